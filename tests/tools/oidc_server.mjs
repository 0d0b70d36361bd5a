// A real OAuth 2.0 authorization server for the vault tests: npm's `oidc-provider`
// configured for the client-credentials grant (RFC 6749 §4.4) with one confidential
// client (client_secret_basic) and token introspection (RFC 7662).
//
// Env: CLIENT_ID, CLIENT_SECRET, SCOPE (space-separated allowed scopes), TOKEN_TTL
// (seconds). Prints `READY <issuer>` once listening on 127.0.0.1 (random port); the
// token endpoint is `<issuer>/token`, introspection `<issuer>/token/introspection`.
// Exits when stdin closes (the test process ended).
import http from 'node:http';
import Provider from 'oidc-provider';

const clientId = process.env.CLIENT_ID;
const clientSecret = process.env.CLIENT_SECRET;
const scope = process.env.SCOPE || 'alerts:read';
const ttl = Number(process.env.TOKEN_TTL || 3600);

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope,
      },
    ],
    scopes: scope.split(' '),
    features: {
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      devInteractions: { enabled: false },
    },
    ttl: { ClientCredentials: ttl },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  console.log(`READY ${issuer}`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

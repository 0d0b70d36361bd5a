// Portcullis admin panel: progressive enhancement of server-rendered pages.
// Without this script every page still reads and every form still posts; with it the
// switch and the test run in place, the switch offers an undo, and the catalogue
// refreshes itself. Served as a file (the CSP allows no inline script); values are
// written with textContent, and only server-escaped HTML goes into innerHTML.
"use strict";

(function () {
  const UNDO_SECONDS = 8;
  const POLL_MS = 5000;

  function post(form) {
    return fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams(new FormData(form)),
    }).then(function (resp) {
      return resp.json().then(function (body) {
        if (!resp.ok) {
          throw new Error(body && body.error ? body.error : "HTTP " + resp.status);
        }
        return body;
      });
    });
  }

  function announce(text, undo) {
    const region = document.getElementById("toast-region");
    if (!region) {
      return;
    }
    region.textContent = "";
    const toast = document.createElement("div");
    toast.className = "toast";
    toast.setAttribute("role", "status");
    const msg = document.createElement("span");
    msg.textContent = text + " ";
    toast.appendChild(msg);
    if (undo) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link undo";
      let left = UNDO_SECONDS;
      button.textContent = "Undo (" + left + " s)";
      const timer = setInterval(function () {
        left -= 1;
        if (left <= 0) {
          clearInterval(timer);
          button.remove();
        } else {
          button.textContent = "Undo (" + left + " s)";
        }
      }, 1000);
      button.addEventListener("click", function () {
        clearInterval(timer);
        button.remove();
        undo();
      });
      toast.appendChild(button);
    }
    region.appendChild(toast);
  }

  function setHealth(cell, code, text) {
    const span = cell.querySelector(".health");
    if (!span) {
      return;
    }
    span.className = "health health-" + code;
    span.setAttribute("data-health", code);
    const t = span.querySelector(".health-text");
    if (t) {
      t.textContent = text;
    }
  }

  function setSwitch(form, enabled) {
    const button = form.querySelector("button.switch");
    const hidden = form.querySelector("input[name=enabled]");
    if (button) {
      button.setAttribute("aria-checked", enabled ? "true" : "false");
      const label = button.querySelector(".switch-label");
      if (label) {
        label.textContent = enabled ? "On" : "Off";
      }
    }
    if (hidden) {
      hidden.value = enabled ? "false" : "true";
    }
  }

  function scopeOf(form) {
    return form.closest("tr") || document;
  }

  function toggle(form, withUndo) {
    const button = form.querySelector("button.switch");
    if (button) {
      button.disabled = true;
    }
    form.dataset.pending = "1";
    post(form)
      .then(function (row) {
        setSwitch(form, row.enabled);
        const cell = scopeOf(form).querySelector(".health-cell");
        if (cell) {
          setHealth(cell, row.health, row.health_text);
        }
        announce(row.name + (row.enabled ? " enabled." : " disabled."),
          withUndo ? function () { toggle(form, false); } : null);
      })
      .catch(function (err) {
        announce("Could not change " + (button ? button.getAttribute("aria-label") : "the connector") + ": " + err.message, null);
      })
      .finally(function () {
        delete form.dataset.pending;
        if (button) {
          button.disabled = false;
          button.focus();
        }
      });
  }

  function runTest(form) {
    const button = form.querySelector("button");
    const original = button ? button.textContent : "";
    if (button) {
      button.disabled = true;
      button.textContent = "Testing…";
    }
    const row = form.closest("tr");
    post(form)
      .then(function (body) {
        showReport(form, row, body.id, body.html);
      })
      .catch(function (err) {
        const p = document.createElement("p");
        p.className = "notice error";
        p.textContent = "Test failed to run: " + err.message;
        showNode(form, row, p);
      })
      .finally(function () {
        if (button) {
          button.disabled = false;
          button.textContent = original;
        }
      });
  }

  function showNode(form, row, node) {
    if (row) {
      let next = row.nextElementSibling;
      if (!next || !next.classList.contains("test-row")) {
        next = document.createElement("tr");
        next.className = "test-row";
        const td = document.createElement("td");
        td.colSpan = row.children.length;
        next.appendChild(td);
        row.after(next);
      }
      const td = next.firstElementChild;
      td.textContent = "";
      td.appendChild(node);
      td.setAttribute("aria-live", "polite");
    } else {
      const target = document.querySelector(".test-result");
      if (target) {
        target.textContent = "";
        target.appendChild(node);
      }
    }
  }

  function showReport(form, row, id, html) {
    const wrap = document.createElement("div");
    wrap.className = "test-report";
    wrap.setAttribute("data-for", id);
    // `html` is rendered and escaped by the server.
    wrap.innerHTML = html;
    showNode(form, row, wrap);
  }

  document.addEventListener("submit", function (ev) {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement)) {
      return;
    }
    if (form.classList.contains("toggle")) {
      ev.preventDefault();
      if (!form.dataset.pending) {
        toggle(form, true);
      }
    } else if (form.classList.contains("test")) {
      ev.preventDefault();
      runTest(form);
    }
  });

  // The same form as the server's: "2026-11-23 19:06:53 UTC".
  function shownTime(iso) {
    const d = new Date(iso);
    if (isNaN(d.getTime())) {
      return iso;
    }
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC");
  }

  function refresh(table) {
    fetch(table.getAttribute("data-poll"), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" },
    })
      .then(function (resp) {
        if (!resp.ok) {
          throw new Error("HTTP " + resp.status);
        }
        return resp.json();
      })
      .then(function (body) {
        const seen = new Set();
        body.connectors.forEach(function (c) {
          seen.add(c.id);
          const row = table.querySelector("tr[data-id=\"" + CSS.escape(c.id) + "\"]");
          if (!row) {
            return;
          }
          const form = row.querySelector("form.toggle");
          if (form && !form.dataset.pending) {
            setSwitch(form, c.enabled);
          }
          const state = row.querySelector(".state-text");
          if (state) {
            state.textContent = c.enabled ? "Enabled" : "Disabled";
          }
          const cell = row.querySelector(".health-cell");
          if (cell) {
            setHealth(cell, c.health, c.health_text);
          }
          const last = row.querySelector(".last-event");
          if (last) {
            last.textContent = "";
            if (c.last_event) {
              const t = document.createElement("time");
              t.setAttribute("datetime", c.last_event);
              t.textContent = shownTime(c.last_event);
              last.appendChild(t);
            } else {
              const never = document.createElement("span");
              never.className = "muted";
              never.textContent = "never";
              last.appendChild(never);
            }
          }
          const rate = row.querySelector(".rate");
          if (rate) {
            rate.textContent = c.events_per_min == null ? "—"
              : (c.events_per_min >= 10 ? c.events_per_min.toFixed(0) : c.events_per_min.toFixed(1));
          }
        });
        const rows = table.querySelectorAll("tbody tr[data-id]");
        const status = document.getElementById("refresh-status");
        if (status) {
          const extra = body.connectors.length !== rows.length ? " The list changed: reload to see it." : "";
          status.textContent = body.connectors.length + " connector(s). Updated " +
            new Date().toLocaleTimeString() + "." + extra;
        }
      })
      .catch(function () {
        const status = document.getElementById("refresh-status");
        if (status) {
          status.textContent = "Live refresh paused (the server did not answer).";
        }
      });
  }

  // Credential forms: show only the fields of the chosen kind.
  function showKind(form) {
    const select = form.querySelector("select[name=kind]");
    if (!select) {
      return;
    }
    form.querySelectorAll("fieldset.kind").forEach(function (fs) {
      const on = fs.getAttribute("data-kind") === select.value;
      fs.hidden = !on;
      fs.disabled = !on;
    });
  }

  document.addEventListener("change", function (ev) {
    const t = ev.target;
    if (t instanceof HTMLSelectElement && t.name === "kind" && t.form && t.form.classList.contains("credential")) {
      showKind(t.form);
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.credential").forEach(showKind);
    const table = document.querySelector("table[data-poll]");
    if (table) {
      document.body.setAttribute("data-live", "on");
      setInterval(function () { refresh(table); }, POLL_MS);
    }
  });
})();

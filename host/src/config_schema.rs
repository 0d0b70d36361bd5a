//! Validation of connector configuration against the JSON Schema a plugin declares,
//! with RFC 6901 field paths in every error.

use serde::Serialize;

/// One problem with one configuration field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// RFC 6901 JSON Pointer to the field (`""` = the whole document).
    pub path: String,
    /// What was expected.
    pub message: String,
}

/// The declared schema is not a usable JSON Schema.
#[derive(Debug, thiserror::Error)]
#[error("invalid JSON Schema: {0}")]
pub struct SchemaError(String);

/// A compiled configuration schema.
pub struct ConfigSchema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for ConfigSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSchema").finish_non_exhaustive()
    }
}

impl ConfigSchema {
    /// Compile a schema (draft detected from `$schema`, default 2020-12). Remote `$ref`s
    /// are not resolved: a plugin's schema must be self-contained.
    pub fn compile(schema: &serde_json::Value) -> Result<Self, SchemaError> {
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(schema)
            .map_err(|e| SchemaError(e.to_string()))?;
        Ok(ConfigSchema { validator })
    }

    /// Every violation, each with the path of the offending field.
    pub fn validate(&self, config: &serde_json::Value) -> Vec<FieldError> {
        let mut errors: Vec<FieldError> = self
            .validator
            .iter_errors(config)
            .map(|e| FieldError {
                path: e.instance_path.to_string(),
                message: e.to_string(),
            })
            .collect();
        errors.sort_by(|a, b| a.path.cmp(&b.path));
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_paths_of_each_bad_field() {
        let schema = ConfigSchema::compile(&json!({
            "type": "object",
            "required": ["base_url"],
            "properties": {
                "base_url": {"type": "string"},
                "page_size": {"type": "integer", "minimum": 1}
            },
            "additionalProperties": false
        }))
        .unwrap();
        let errs = schema.validate(&json!({"page_size": 0, "bogus": true}));
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&""), "{errs:?}");
        assert!(paths.contains(&"/page_size"), "{errs:?}");
        assert!(schema.validate(&json!({"base_url": "x"})).is_empty());
    }

    #[test]
    fn rejects_invalid_schema() {
        assert!(ConfigSchema::compile(&json!({"type": 12})).is_err());
    }
}

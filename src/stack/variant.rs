//! Negative-control variants: the good stack with a few edits, rendered and validated like it.

use super::{Object, Problem, Stack, StackError, parse_object, validate};

impl Stack {
    /// The variant `name` of stack.toml `[variants]`, as a stack of its own.
    pub fn variant(&self, name: &str) -> Result<Stack, StackError> {
        let file = self.dir.join("stack.toml");
        let problem = |field: String, message: String| Problem { file: file.clone(), doc: None, object: None, field: Some(field), message };
        let invalid = |problems| StackError::Invalid { stack: format!("{} (variant {name})", self.name()), problems };
        let Some(spec) = self.spec.variants.get(name) else {
            let known: Vec<&String> = self.spec.variants.keys().collect();
            return Err(invalid(vec![problem("variants".into(), format!("no variant {name:?} (variants: {known:?})"))]));
        };
        let mut problems = Vec::new();
        let mut objects: Vec<Object> = self.objects.clone();
        for (i, r) in spec.remove.iter().enumerate() {
            let before = objects.len();
            objects.retain(|o| !(o.resource.kind() == r.kind && o.resource.name() == r.name));
            if objects.len() == before {
                problems.push(problem(format!("variants.{name}.remove[{i}]"), format!("{} {} is not in the stack", r.kind, r.name)));
            }
        }
        for (i, p) in spec.patch.iter().enumerate() {
            let at = format!("variants.{name}.patch[{i}]");
            let Some(object) = objects.iter_mut().find(|o| o.resource.kind() == p.kind && o.resource.name() == p.name) else {
                problems.push(problem(at, format!("{} {} is not in the stack", p.kind, p.name)));
                continue;
            };
            let ops: json_patch::Patch = match serde_json::from_value(serde_json::Value::Array(p.ops.clone())) {
                Ok(ops) => ops,
                Err(e) => {
                    problems.push(problem(format!("{at}.ops"), format!("not an RFC 6902 JSON Patch: {e}")));
                    continue;
                }
            };
            let mut raw = object.raw.clone();
            if let Err(e) = json_patch::patch(&mut raw, &ops) {
                problems.push(problem(format!("{at}.ops"), format!("does not apply to {}: {e}", object.label())));
                continue;
            }
            match parse_object(raw) {
                Ok((resource, raw)) => {
                    object.resource = resource;
                    object.raw = raw;
                }
                Err(e) => problems.push(problem(
                    format!("{at}.ops"),
                    format!("makes {} invalid: {}: {}", object.label(), e.field.unwrap_or_default(), e.message),
                )),
            }
        }
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        let stack = Stack { dir: self.dir.clone(), spec: self.spec.clone(), objects, variant: Some(name.to_string()) };
        let problems = validate::validate(&stack);
        if problems.is_empty() { Ok(stack) } else { Err(invalid(problems)) }
    }
}

//! The JSONPath subset KDA's schema mapping used: `$`, `.name`, `['name']`, `[n]`, and `[0:]`
//! or `[*]` (every element: a record path with it fans one record out into many rows).

use serde_json::Value as Json;

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Key(String),
    Index(usize),
    /// Every element of an array.
    Each,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Path(pub Vec<Step>);

impl Path {
    pub fn parse(text: &str) -> Result<Path, String> {
        let t = text.trim();
        let Some(mut rest) = t.strip_prefix('$') else {
            return Err(format!("`{text}`: a JSONPath starts with `$`"));
        };
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                if end == 0 {
                    return Err(format!("`{text}`: empty name after `.`"));
                }
                steps.push(Step::Key(r[..end].to_string()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r
                    .find(']')
                    .ok_or_else(|| format!("`{text}`: `[` without `]`"))?;
                let inner = r[..end].trim();
                steps.push(if inner == "*" || inner == "0:" {
                    Step::Each
                } else if let Some(q) = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                {
                    Step::Key(q.to_string())
                } else {
                    Step::Index(
                        inner
                            .parse()
                            .map_err(|_| format!("`{text}`: bad index `[{inner}]`"))?,
                    )
                });
                rest = &r[end + 1..];
            } else {
                return Err(format!("`{text}`: expected `.` or `[` at `{rest}`"));
            }
        }
        Ok(Path(steps))
    }

    pub fn fans_out(&self) -> bool {
        self.0.contains(&Step::Each)
    }

    /// The rest of this path if it starts with `prefix`.
    pub fn strip(&self, prefix: &Path) -> Option<Path> {
        self.0
            .starts_with(&prefix.0)
            .then(|| Path(self.0[prefix.0.len()..].to_vec()))
    }

    /// The one value the path finds (a path without `Each`), if any.
    pub fn get<'a>(&self, mut v: &'a Json) -> Option<&'a Json> {
        for step in &self.0 {
            v = match (step, v) {
                (Step::Key(k), Json::Object(m)) => m.get(k)?,
                (Step::Index(i), Json::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(v)
    }

    /// Every value the path finds, in order (`Each` expands arrays).
    pub fn all<'a>(&self, v: &'a Json, out: &mut Vec<&'a Json>) {
        fn walk<'a>(steps: &[Step], v: &'a Json, out: &mut Vec<&'a Json>) {
            let Some((first, rest)) = steps.split_first() else {
                out.push(v);
                return;
            };
            match (first, v) {
                (Step::Key(k), Json::Object(m)) => {
                    if let Some(x) = m.get(k) {
                        walk(rest, x, out)
                    }
                }
                (Step::Index(i), Json::Array(a)) => {
                    if let Some(x) = a.get(*i) {
                        walk(rest, x, out)
                    }
                }
                (Step::Each, Json::Array(a)) => a.iter().for_each(|x| walk(rest, x, out)),
                _ => {}
            }
        }
        walk(&self.0, v, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_values_and_fan_out() {
        let doc: Json = serde_json::json!({"a": {"b c": [1, {"d": 2}]}, "t": [{"p": 1}, {"p": 2}]});
        assert_eq!(
            Path::parse("$.a['b c'][1].d").unwrap().get(&doc),
            Some(&Json::from(2))
        );
        assert_eq!(Path::parse("$.a.x").unwrap().get(&doc), None);
        let mut out = Vec::new();
        Path::parse("$.t[0:].p").unwrap().all(&doc, &mut out);
        assert_eq!(out, vec![&Json::from(1), &Json::from(2)]);
        let rows = Path::parse("$.t[0:]").unwrap();
        let col = Path::parse("$.t[0:].p").unwrap();
        assert_eq!(col.strip(&rows), Some(Path(vec![Step::Key("p".into())])));
        assert!(Path::parse("a.b").is_err());
        assert!(Path::parse("$.a[").is_err());
    }
}

//! `assay serve --witness NAME=URL=VKEY`: one witness a log asks for cosignatures.

use assay_events::cosignature::CosignerVerifier;

/// One witness: a name for metrics and messages, its submission prefix, its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessSpec {
    pub name: String,
    /// The submission prefix: `add-checkpoint` is posted to `URL/add-checkpoint`.
    pub url: String,
    pub vkey: CosignerVerifier,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecError {
    #[error("--witness {0:?}: expected NAME=URL=VKEY")]
    Shape(String),
    #[error("--witness {given:?}: the name must be letters, digits, '.', '-' or '_' (at most 64)")]
    Name { given: String },
    #[error("--witness {name}: the URL must start with http:// or https://: {url:?}")]
    Url { name: String, url: String },
    #[error("--witness {name}: not a witness vkey (name+id+base64 of 0x04 and the key): {detail}")]
    Key { name: String, detail: String },
}

impl std::str::FromStr for WitnessSpec {
    type Err = SpecError;

    /// `NAME=URL=VKEY`: the name ends at the first `=`, the vkey starts after the last (a
    /// vkey holds no `=`: 33 bytes of base64 need no padding), the URL is between.
    fn from_str(s: &str) -> Result<WitnessSpec, SpecError> {
        let shape = || SpecError::Shape(s.to_owned());
        let (name, rest) = s.split_once('=').ok_or_else(shape)?;
        let (url, vkey) = rest.rsplit_once('=').ok_or_else(shape)?;
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !name_ok {
            return Err(SpecError::Name { given: name.to_owned() });
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048 {
            return Err(SpecError::Url { name: name.to_owned(), url: url.to_owned() });
        }
        let vkey = CosignerVerifier::parse(vkey)
            .map_err(|e| SpecError::Key { name: name.to_owned(), detail: e.to_string() })?;
        Ok(WitnessSpec { name: name.to_owned(), url: url.trim_end_matches('/').to_owned(), vkey })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_events::cosignature::Cosigner;

    #[test]
    fn parses_and_names_the_fault() {
        let vkey = Cosigner::from_seed("w.example/1", [1; 32]).unwrap().verifier();
        let spec: WitnessSpec = format!("w1=http://127.0.0.1:9/a?x=1/={}", vkey.to_text()).parse().unwrap();
        assert_eq!((spec.name.as_str(), spec.url.as_str()), ("w1", "http://127.0.0.1:9/a?x=1"));
        assert_eq!(spec.vkey, vkey);
        let e = |s: String| s.parse::<WitnessSpec>().unwrap_err().to_string();
        assert!(e("w1".into()).contains("NAME=URL=VKEY"));
        assert!(e(format!("w 1=http://x={}", vkey.to_text())).contains("the name"));
        assert!(e(format!("w1=ftp://x={}", vkey.to_text())).contains("URL"));
        assert!(e("w1=http://x=abc".into()).contains("not a witness vkey"));
    }
}

//! Engine API versions: the `/v1.NN` prefix of a request, compared as dockerd compares
//! them (major, then minor, as numbers).

use std::fmt;

/// An API version such as 1.41.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    /// The newest version whose reply shapes berthd produces (dockerd 20.10's).
    pub const CURRENT: ApiVersion = ApiVersion::new(1, 41);
    /// The oldest version berthd accepts, as dockerd 20.10.
    pub const MIN: ApiVersion = ApiVersion::new(1, 12);

    pub const fn new(major: u32, minor: u32) -> Self {
        ApiVersion { major, minor }
    }

    /// Parses `1.41`; `None` for anything else (no sign, no spaces, no third part). A
    /// number too large for u32 counts as u32::MAX, so that a huge version is "too new",
    /// as dockerd compares them.
    pub fn parse(v: &str) -> Option<ApiVersion> {
        let number = |s: &str| -> Option<u32> {
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            Some(s.parse().unwrap_or(u32::MAX))
        };
        let (a, b) = v.split_once('.')?;
        Some(ApiVersion::new(number(a)?, number(b)?))
    }

    /// The version of a request path: its `/v1.NN/` prefix, or [`ApiVersion::CURRENT`]
    /// when it has none (dockerd treats an unversioned request as the newest).
    pub fn of_path(path: &str) -> ApiVersion {
        path.strip_prefix("/v")
            .and_then(|rest| rest.split('/').next())
            .and_then(ApiVersion::parse)
            .unwrap_or(ApiVersion::CURRENT)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert!(ApiVersion::parse("1.9").unwrap() < ApiVersion::parse("1.10").unwrap());
        assert_eq!(ApiVersion::parse("1.41"), Some(ApiVersion::CURRENT));
        assert_eq!(
            ApiVersion::parse("99999999999.1"),
            Some(ApiVersion::new(u32::MAX, 1))
        );
        for bad in ["", "1", "1.", ".1", "1.x", "+1.2", "1.2.3", "1. 2", "1.-1"] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad}");
        }
        assert_eq!(
            ApiVersion::of_path("/v1.24/containers/json"),
            ApiVersion::new(1, 24)
        );
        assert_eq!(ApiVersion::of_path("/containers/json"), ApiVersion::CURRENT);
        assert_eq!(ApiVersion::of_path("/version"), ApiVersion::CURRENT);
        assert_eq!(ApiVersion::CURRENT.to_string(), "1.41");
    }
}

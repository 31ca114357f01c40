//! `otpauth://` provisioning URIs (Google's Key Uri Format): build and parse.
//!
//! Built URIs follow the Key Uri Format strictly (SEC-28): the label is
//! `Issuer:account`, both percent-encoded (`%20` for a space, never `+`), the `issuer`
//! parameter repeats the issuer for apps that ignore the label prefix, the secret is base32
//! without padding, and `algorithm`, `digits` and `period` appear only when they differ from
//! the defaults (SHA1, 6, 30), because several apps ignore them (SEC-29).
//!
//! Parsing is lenient where real issuers are sloppy and strict where a mistake would change
//! the codes: see [`OtpAuth::parse`].

use core::fmt;

use thiserror::Error;
use zeroize::Zeroizing;

use crate::otp::{Algorithm, Digits, ParamError, Period, TotpParams};
use crate::secret::{Secret, SecretError};

/// Why a URI could not be built or parsed. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UriError {
    /// Longer than [`OtpAuth::MAX_URI_LEN`] characters.
    #[error("the URI is too long (at most {max} characters)", max = OtpAuth::MAX_URI_LEN)]
    TooLong,
    /// Does not start with `otpauth://`.
    #[error("not an otpauth:// URI")]
    NotOtpauth,
    /// The type is neither `totp` nor `hotp`.
    #[error("unknown OTP type (expected totp or hotp)")]
    UnknownType,
    /// The label has no account name.
    #[error("the URI has no account name")]
    MissingAccount,
    /// An issuer or account name contains a colon, which the Key Uri Format forbids.
    #[error("the {field} must not contain a colon")]
    Colon {
        /// `"issuer"` or `"account"`.
        field: &'static str,
    },
    /// An issuer or account name longer than [`OtpAuth::MAX_NAME_LEN`] bytes.
    #[error("the {field} is too long (at most {max} bytes)", max = OtpAuth::MAX_NAME_LEN)]
    NameTooLong {
        /// `"issuer"` or `"account"`.
        field: &'static str,
    },
    /// A `%` escape that is not two hex digits, or text that is not UTF-8 once decoded.
    #[error("the URI's {part} has an invalid percent-encoding")]
    Encoding {
        /// Which part: `"label"` or a parameter name.
        part: &'static str,
    },
    /// No `secret` parameter, or an empty one.
    #[error("the URI has no secret")]
    MissingSecret,
    /// The secret is not valid base32 or has a bad length.
    #[error("the URI's secret is invalid: {0}")]
    Secret(SecretError),
    /// An `hotp` URI without a `counter`.
    #[error("an hotp URI needs a counter")]
    MissingCounter,
    /// A parameter that appears twice.
    #[error("the parameter {0} appears more than once")]
    Duplicate(&'static str),
    /// A parameter whose value is not valid.
    #[error("the parameter {name} is invalid: {reason}")]
    Parameter {
        /// The parameter's name.
        name: &'static str,
        /// Why.
        reason: ParamReason,
    },
    /// Parameters that an `otpauth://` URI cannot carry (a `T0` other than 0).
    #[error("T0 other than 0 cannot be expressed in an otpauth URI")]
    T0NotRepresentable,
}

/// Why a parameter value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParamReason {
    /// Not a non-negative decimal number.
    #[error("not a number")]
    NotANumber,
    /// Out of the accepted range.
    #[error("{0}")]
    OutOfRange(ParamError),
}

/// The kind of one-time password a URI describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpKind {
    /// Time-based (RFC 6238).
    Totp,
    /// Counter-based (RFC 4226), with the next counter value.
    Hotp {
        /// The counter the next code is computed from.
        counter: u64,
    },
}

/// A built `otpauth://` URI. It carries the secret, so it is zeroized on drop and redacted
/// in `Debug` (SEC-31); show it only to its owner, as a QR code during enrollment.
///
/// ```
/// use totp_mfa::{OtpAuth, Secret, otp::TotpParams};
/// let secret = Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
/// let uri = OtpAuth::totp(Some("Example"), "alice@google.com", secret, TotpParams::default())
///     .unwrap()
///     .to_uri();
/// assert_eq!(uri.as_str(),
///     "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example");
/// assert_eq!(format!("{uri:?}"), "ProvisioningUri(<redacted>)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ProvisioningUri(Zeroizing<String>);

impl ProvisioningUri {
    /// The URI text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ProvisioningUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProvisioningUri(<redacted>)")
    }
}

/// The contents of an `otpauth://` URI: who it is for and how to compute its codes.
///
/// ```
/// use totp_mfa::{OtpAuth, otp::Algorithm};
/// let parsed = OtpAuth::parse(
///     "otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ\
///      &issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30").unwrap();
/// assert_eq!(parsed.issuer(), Some("ACME Co"));
/// assert_eq!(parsed.account(), "john.doe@email.com");
/// assert_eq!(parsed.totp_params().algorithm(), Algorithm::Sha1);
/// // Round trip.
/// assert_eq!(OtpAuth::parse(parsed.to_uri().as_str()).unwrap(), parsed);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpAuth {
    kind: OtpKind,
    issuer: Option<String>,
    label_issuer: Option<String>,
    account: String,
    secret: Secret,
    algorithm: Algorithm,
    digits: Digits,
    period: Period,
}

impl OtpAuth {
    /// The longest URI [`OtpAuth::parse`] reads; longer input is refused before parsing.
    pub const MAX_URI_LEN: usize = 4096;
    /// The longest issuer or account name, in bytes.
    pub const MAX_NAME_LEN: usize = 256;

    /// Describes a TOTP credential for provisioning.
    ///
    /// # Errors
    /// [`UriError::Colon`] if the issuer or account contains `:`,
    /// [`UriError::MissingAccount`] for an empty account, [`UriError::NameTooLong`], or
    /// [`UriError::T0NotRepresentable`] for a non-zero `T0`.
    pub fn totp(
        issuer: Option<&str>,
        account: &str,
        secret: Secret,
        params: TotpParams,
    ) -> Result<Self, UriError> {
        if params.t0() != 0 {
            return Err(UriError::T0NotRepresentable);
        }
        let issuer = match issuer {
            Some(i) if !i.trim().is_empty() => Some(check_name(i.trim(), "issuer")?.to_owned()),
            _ => None,
        };
        let account = check_name(account.trim(), "account")?;
        if account.is_empty() {
            return Err(UriError::MissingAccount);
        }
        Ok(OtpAuth {
            kind: OtpKind::Totp,
            label_issuer: issuer.clone(),
            issuer,
            account: account.to_owned(),
            secret,
            algorithm: params.algorithm(),
            digits: params.digits(),
            period: params.period(),
        })
    }

    /// Parses an `otpauth://` URI.
    ///
    /// Rules, and why:
    /// * Surrounding white space is ignored (URIs are pasted with newlines); input longer than
    ///   [`OtpAuth::MAX_URI_LEN`] is refused before any work (bounded cost).
    /// * The scheme and type are case-insensitive; the type is `totp` or `hotp`.
    /// * In the label, `%XX` escapes are decoded and `+` stays a plus (plus-addressed
    ///   e-mails); in parameters, `+` means a space, as in HTML forms.
    /// * The label's issuer prefix ends at the colon (`:` or `%3A`); spaces after it are
    ///   dropped. When the `issuer` parameter is present and the label starts with it, the
    ///   prefix is exactly that issuer, so colons inside it survive; otherwise the last colon
    ///   separates. The `issuer` parameter wins over the prefix; both are kept.
    /// * `secret` is required. Case, spaces and `=`/`%3D` padding are forgiven, any length
    ///   is read (spare trailing bits dropped), but a character outside the base32 alphabet
    ///   is an error: unlike a person typing, a URI's `0` is corruption, not a slip for `O`.
    /// * `algorithm` (any case), `digits` (6-8) and `period` (1-3600) are optional; anything
    ///   else is a typed error. Unknown parameters are ignored; known ones may not repeat,
    ///   so a URI cannot smuggle a second secret past a reviewer.
    /// * `hotp` URIs need a `counter`; a `period` on them means nothing and is ignored.
    ///
    /// # Errors
    /// A [`UriError`] naming what is wrong.
    pub fn parse(uri: &str) -> Result<Self, UriError> {
        if uri.len() > Self::MAX_URI_LEN {
            return Err(UriError::TooLong);
        }
        let uri = uri.trim();
        let rest = strip_prefix_ignore_case(uri, "otpauth://").ok_or(UriError::NotOtpauth)?;
        let (kind_text, rest) = rest.split_once('/').ok_or(UriError::UnknownType)?;
        let is_hotp = if kind_text.eq_ignore_ascii_case("totp") {
            false
        } else if kind_text.eq_ignore_ascii_case("hotp") {
            true
        } else {
            return Err(UriError::UnknownType);
        };
        let (label_raw, query) = rest.split_once('?').unwrap_or((rest, ""));
        let label = Zeroizing::new(percent_decode(label_raw, false, "label")?);

        let mut secret: Option<Zeroizing<String>> = None;
        let mut issuer: Option<String> = None;
        let mut algorithm: Option<Algorithm> = None;
        let mut digits: Option<Digits> = None;
        let mut period: Option<Period> = None;
        let mut counter: Option<u64> = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = key.to_ascii_lowercase();
            match key.as_str() {
                "secret" => set_once(
                    &mut secret,
                    "secret",
                    Zeroizing::new(percent_decode(value, true, "secret")?),
                )?,
                "issuer" => set_once(
                    &mut issuer,
                    "issuer",
                    percent_decode(value, true, "issuer")?,
                )?,
                "algorithm" => {
                    let v = percent_decode(value, true, "algorithm")?;
                    let a = v.parse::<Algorithm>().map_err(|e| UriError::Parameter {
                        name: "algorithm",
                        reason: ParamReason::OutOfRange(e),
                    })?;
                    set_once(&mut algorithm, "algorithm", a)?;
                }
                "digits" => {
                    let n = parse_number(value, "digits")?;
                    let d = u32::try_from(n)
                        .map_err(|_| ParamError::Digits(n))
                        .and_then(Digits::new)
                        .map_err(|e| UriError::Parameter {
                            name: "digits",
                            reason: ParamReason::OutOfRange(e),
                        })?;
                    set_once(&mut digits, "digits", d)?;
                }
                // A period means nothing for HOTP; such URIs exist and are read as if it
                // were absent, so the value round-trips.
                "period" if is_hotp => {}
                "period" => {
                    let n = parse_number(value, "period")?;
                    let p = Period::new(n).map_err(|e| UriError::Parameter {
                        name: "period",
                        reason: ParamReason::OutOfRange(e),
                    })?;
                    set_once(&mut period, "period", p)?;
                }
                "counter" => set_once(&mut counter, "counter", parse_number(value, "counter")?)?,
                _ => {}
            }
        }

        let secret_text = secret.ok_or(UriError::MissingSecret)?;
        if secret_text.trim().is_empty() {
            return Err(UriError::MissingSecret);
        }
        let secret = Secret::from_base32_machine(&secret_text).map_err(|e| match e {
            SecretError::Empty => UriError::MissingSecret,
            other => UriError::Secret(other),
        })?;

        let issuer = issuer
            .map(|i| i.trim().to_owned())
            .filter(|i| !i.is_empty());
        let (label_issuer, account) = split_label(&label, issuer.as_deref());
        let account = account.trim();
        if account.is_empty() {
            return Err(UriError::MissingAccount);
        }
        if account.len() > Self::MAX_NAME_LEN {
            return Err(UriError::NameTooLong { field: "account" });
        }
        if let Some(i) = issuer.as_deref().or(label_issuer.as_deref()) {
            if i.len() > Self::MAX_NAME_LEN {
                return Err(UriError::NameTooLong { field: "issuer" });
            }
        }
        let kind = if is_hotp {
            OtpKind::Hotp {
                counter: counter.ok_or(UriError::MissingCounter)?,
            }
        } else {
            OtpKind::Totp
        };
        Ok(OtpAuth {
            kind,
            issuer,
            label_issuer,
            account: account.to_owned(),
            secret,
            algorithm: algorithm.unwrap_or_default(),
            digits: digits.unwrap_or_default(),
            period: period.unwrap_or_default(),
        })
    }

    /// Builds the URI (see the module docs for the exact format).
    #[must_use]
    pub fn to_uri(&self) -> ProvisioningUri {
        let mut out = Zeroizing::new(String::with_capacity(128));
        out.push_str(match self.kind {
            OtpKind::Totp => "otpauth://totp/",
            OtpKind::Hotp { .. } => "otpauth://hotp/",
        });
        let prefix = self.issuer.as_deref().or(self.label_issuer.as_deref());
        if let Some(prefix) = prefix {
            percent_encode_into(prefix, &mut out);
            out.push(':');
        }
        percent_encode_into(&self.account, &mut out);
        out.push_str("?secret=");
        out.push_str(&self.secret.to_base32());
        if let Some(issuer) = prefix {
            out.push_str("&issuer=");
            percent_encode_into(issuer, &mut out);
        }
        if self.algorithm != Algorithm::Sha1 {
            out.push_str("&algorithm=");
            out.push_str(self.algorithm.name());
        }
        if self.digits != Digits::SIX {
            out.push_str("&digits=");
            out.push_str(&self.digits.get().to_string());
        }
        match self.kind {
            OtpKind::Totp => {
                if self.period != Period::DEFAULT {
                    out.push_str("&period=");
                    out.push_str(&self.period.seconds().to_string());
                }
            }
            OtpKind::Hotp { counter } => {
                out.push_str("&counter=");
                out.push_str(&counter.to_string());
            }
        }
        ProvisioningUri(out)
    }

    /// TOTP or HOTP (with its counter).
    #[must_use]
    pub fn kind(&self) -> OtpKind {
        self.kind
    }

    /// The issuer: the `issuer` parameter, or else the label's prefix.
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref().or(self.label_issuer.as_deref())
    }

    /// The issuer prefix of the label, as written there.
    #[must_use]
    pub fn label_issuer(&self) -> Option<&str> {
        self.label_issuer.as_deref()
    }

    /// The account name.
    #[must_use]
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The shared secret.
    #[must_use]
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// Algorithm, digits and period as [`TotpParams`] (`T0` is always 0 in a URI).
    #[must_use]
    pub fn totp_params(&self) -> TotpParams {
        TotpParams::default()
            .with_algorithm(self.algorithm)
            .with_digits(self.digits)
            .with_period(self.period)
    }
}

fn check_name<'a>(name: &'a str, field: &'static str) -> Result<&'a str, UriError> {
    if name.contains(':') {
        return Err(UriError::Colon { field });
    }
    if name.len() > OtpAuth::MAX_NAME_LEN {
        return Err(UriError::NameTooLong { field });
    }
    Ok(name)
}

fn set_once<T>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), UriError> {
    if slot.is_some() {
        return Err(UriError::Duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_number(value: &str, name: &'static str) -> Result<u64, UriError> {
    let v = value.trim();
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UriError::Parameter {
            name,
            reason: ParamReason::NotANumber,
        });
    }
    v.parse::<u64>().map_err(|_| UriError::Parameter {
        name,
        reason: ParamReason::NotANumber,
    })
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Splits a decoded label into (issuer prefix, account).
fn split_label(label: &str, issuer_param: Option<&str>) -> (Option<String>, String) {
    if let Some(issuer) = issuer_param {
        if let Some(rest) = label.strip_prefix(issuer) {
            if let Some(account) = rest.strip_prefix(':') {
                return (Some(issuer.to_owned()), account.trim_start().to_owned());
            }
        }
    }
    match label.rsplit_once(':') {
        Some((prefix, account)) => {
            let prefix = prefix.trim();
            (
                (!prefix.is_empty()).then(|| prefix.to_owned()),
                account.trim_start().to_owned(),
            )
        }
        None => (None, label.to_owned()),
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`), then checks UTF-8.
fn percent_decode(s: &str, plus_is_space: bool, part: &'static str) -> Result<String, UriError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push((h << 4) | l),
                    _ => return Err(UriError::Encoding { part }),
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| UriError::Encoding { part })
}

/// RFC 3986 percent-encoding: unreserved characters and `@` stay; everything else (a space
/// included) becomes `%XX`.
fn percent_encode_into(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kuf_secret() -> Secret {
        Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap()
    }

    #[test]
    fn builds_the_key_uri_format_golden_string() {
        // SEC-28: the Key Uri Format's own example.
        let uri = OtpAuth::totp(
            Some("Example"),
            "alice@google.com",
            kuf_secret(),
            TotpParams::default(),
        )
        .unwrap()
        .to_uri();
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"
        );
    }

    #[test]
    fn spaces_are_percent_20_and_non_defaults_are_emitted() {
        let params = TotpParams::default()
            .with_algorithm(Algorithm::Sha256)
            .with_digits(Digits::EIGHT)
            .with_period(Period::new(60).unwrap());
        let uri = OtpAuth::totp(Some("ACME Co"), "John Doe+x", kuf_secret(), params)
            .unwrap()
            .to_uri();
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/ACME%20Co:John%20Doe%2Bx?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co\
             &algorithm=SHA256&digits=8&period=60"
        );
        let back = OtpAuth::parse(uri.as_str()).unwrap();
        assert_eq!(back.account(), "John Doe+x");
        assert_eq!(back.totp_params(), params);
    }

    #[test]
    fn colons_are_refused_when_building() {
        for (i, a) in [(Some("A:B"), "x"), (Some("A"), "x:y")] {
            assert!(matches!(
                OtpAuth::totp(i, a, kuf_secret(), TotpParams::default()),
                Err(UriError::Colon { .. })
            ));
        }
    }

    #[test]
    fn parses_label_variants() {
        let cases = [
            (
                "otpauth://totp/Big%20Corporation%3A%20alice%40bigco.com?secret=JBSWY3DPEHPK3PXP",
                Some("Big Corporation"),
                "alice@bigco.com",
            ),
            (
                "otpauth://totp/alice+tag@x.com?secret=JBSWY3DPEHPK3PXP",
                None,
                "alice+tag@x.com",
            ),
            (
                "OTPAUTH://TOTP/Provider1:Alice%20Smith?secret=jbswy3dpehpk3pxp&issuer=Provider1",
                Some("Provider1"),
                "Alice Smith",
            ),
            (
                "otpauth://totp/A:B:c@d?secret=JBSWY3DPEHPK3PXP&issuer=A:B",
                Some("A:B"),
                "c@d",
            ),
            (
                "  otpauth://totp/X:y?issuer=Other+Name&secret=JBSWY3DPEHPK3PXP%3D%3D%3D%3D&foo=bar\n",
                Some("Other Name"),
                "y",
            ),
        ];
        for (uri, issuer, account) in cases {
            let p = OtpAuth::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(p.issuer(), issuer, "{uri}");
            assert_eq!(p.account(), account, "{uri}");
        }
    }

    #[test]
    fn refuses_what_is_broken() {
        use UriError as E;
        type Check = fn(&UriError) -> bool;
        let cases: [(&str, Check); 13] = [
            ("https://totp/x?secret=JBSWY3DPEHPK3PXP", |e| {
                *e == E::NotOtpauth
            }),
            ("otpauth://motp/x?secret=JBSWY3DPEHPK3PXP", |e| {
                *e == E::UnknownType
            }),
            ("otpauth://totp/x", |e| *e == E::MissingSecret),
            ("otpauth://totp/x?secret=", |e| *e == E::MissingSecret),
            ("otpauth://totp/x?secret=JBSWY3DP!EHPK3PXP", |e| {
                matches!(e, E::Secret(_))
            }),
            ("otpauth://totp/x?secret=JBSWY3DP0EHPK3PXP", |e| {
                matches!(e, E::Secret(_))
            }),
            ("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=0", |e| {
                matches!(e, E::Parameter { name: "digits", .. })
            }),
            ("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=-1", |e| {
                matches!(e, E::Parameter { name: "digits", .. })
            }),
            ("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period=0", |e| {
                matches!(e, E::Parameter { name: "period", .. })
            }),
            (
                "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=MD5",
                |e| {
                    matches!(
                        e,
                        E::Parameter {
                            name: "algorithm",
                            ..
                        }
                    )
                },
            ),
            ("otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP", |e| {
                *e == E::MissingCounter
            }),
            (
                "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&secret=GEZDGNBVGY3TQOJQ",
                |e| *e == E::Duplicate("secret"),
            ),
            ("otpauth://totp/%E2%28?secret=JBSWY3DPEHPK3PXP", |e| {
                matches!(e, E::Encoding { .. })
            }),
        ];
        for (uri, check) in cases {
            let e = OtpAuth::parse(uri).unwrap_err();
            assert!(check(&e), "{uri}: {e:?}");
            assert!(!e.to_string().contains("JBSW"), "{e}");
        }
        assert_eq!(OtpAuth::parse(&"a".repeat(5000)), Err(E::TooLong));
    }

    #[test]
    fn hotp_ignores_a_period() {
        let p =
            OtpAuth::parse("otpauth://hotp/a?secret=JBSWY3DPEHPK3PXP&counter=1&period=6").unwrap();
        assert_eq!(p.totp_params().period(), Period::DEFAULT);
        assert_eq!(OtpAuth::parse(p.to_uri().as_str()).unwrap(), p);
    }

    #[test]
    fn hotp_round_trip() {
        let p =
            OtpAuth::parse("otpauth://hotp/Svc:bob?secret=JBSWY3DPEHPK3PXP&counter=42&issuer=Svc")
                .unwrap();
        assert_eq!(p.kind(), OtpKind::Hotp { counter: 42 });
        assert_eq!(OtpAuth::parse(p.to_uri().as_str()).unwrap(), p);
    }
}

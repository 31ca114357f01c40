//! Helpers for testing an integration: an [`Authenticator`] that plays the user's phone.

use crate::error::Error;
use crate::otp::Totp;
use crate::uri::{OtpAuth, OtpKind};

/// Computes codes from a provisioning URI exactly as an authenticator app does: for tests,
/// demos and scripted checks of your own integration.
///
/// ```
/// use totp_mfa::testing::Authenticator;
/// let phone = Authenticator::from_uri(
///     "otpauth://totp/Example:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example")?;
/// assert_eq!(phone.code_at(59)?, "287082"); // RFC 6238 Appendix B
/// # Ok::<(), totp_mfa::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Authenticator {
    totp: Totp,
}

impl Authenticator {
    /// "Scans" a TOTP provisioning URI.
    ///
    /// # Errors
    /// [`Error::Uri`] for a URI that does not parse or is not TOTP.
    pub fn from_uri(uri: &str) -> Result<Self, Error> {
        let auth = OtpAuth::parse(uri)?;
        if auth.kind() != OtpKind::Totp {
            return Err(Error::Uri(crate::uri::UriError::UnknownType));
        }
        Ok(Authenticator {
            totp: Totp::new(auth.secret(), auth.totp_params())?,
        })
    }

    /// The generator behind it, e.g. to compute the code of a given time step.
    #[must_use]
    pub fn totp(&self) -> &Totp {
        &self.totp
    }

    /// The code the app shows at Unix time `now`.
    ///
    /// # Errors
    /// [`Error::Otp`] only for a time before `T0`.
    pub fn code_at(&self, now: u64) -> Result<String, Error> {
        Ok(self.totp.generate(now)?.as_str().to_owned())
    }
}

/// A doc-test fixture: an enrolled user on a manual clock.
#[doc(hidden)]
#[allow(clippy::type_complexity)]
pub fn enrolled() -> (
    crate::Mfa<crate::MemoryStore, std::sync::Arc<crate::ManualClock>>,
    crate::UserId,
    crate::RecoveryCodes,
    Authenticator,
) {
    let clock = std::sync::Arc::new(crate::ManualClock::new(1_800_000_000));
    let mfa = match crate::Mfa::new(crate::MemoryStore::new(), crate::Policy::new("Example")) {
        Ok(m) => m.with_clock(clock),
        Err(e) => panic!("fixture: {e}"),
    };
    let user = match crate::UserId::new("alice") {
        Ok(u) => u,
        Err(e) => panic!("fixture: {e}"),
    };
    let run = || -> Result<_, Error> {
        let enrollment = mfa.begin_enrollment(&user, "alice@example.com")?;
        let phone = Authenticator::from_uri(enrollment.uri().as_str())?;
        let codes = mfa.confirm_enrollment(&user, &phone.code_at(1_800_000_000)?)?;
        Ok((codes, phone))
    };
    match run() {
        Ok((codes, phone)) => (mfa, user, codes, phone),
        Err(e) => panic!("fixture: {e}"),
    }
}

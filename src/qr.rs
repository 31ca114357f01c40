//! QR codes of provisioning URIs: SVG for web pages, Unicode text for terminals.
//!
//! Error correction is level M (15 % of the symbol can be damaged), a good balance for a
//! code shown on a screen. Always show the manual-entry key ([`Secret::to_base32_grouped`])
//! beside the QR code, for when scanning fails.
//!
//! [`Secret::to_base32_grouped`]: crate::Secret::to_base32_grouped

use qrcode::render::{svg, unicode};
use qrcode::{EcLevel, QrCode};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::uri::ProvisioningUri;

/// The URI could not be encoded as a QR code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum QrError {
    /// The URI is too long for the largest QR code at this error-correction level.
    #[error("the URI is too long for a QR code")]
    TooLong,
    /// The PNG image could not be made (module size out of 1..=32, or an encoder failure).
    #[error("the QR code could not be encoded as PNG")]
    Png,
}

impl ProvisioningUri {
    fn qr(&self) -> Result<QrCode, QrError> {
        QrCode::with_error_correction_level(self.as_str().as_bytes(), EcLevel::M)
            .map_err(|_| QrError::TooLong)
    }

    /// An SVG image of the QR code, at least 240 px square, with the standard four-module
    /// quiet zone, ready to inline in an HTML page: an `<svg>` element with no XML
    /// declaration, marked `role="img"` with an `aria-label` for screen readers (offer the
    /// manual key beside it: a QR code is not accessible on its own).
    ///
    /// # Errors
    /// [`QrError::TooLong`] when the URI does not fit in a QR code.
    ///
    /// ```
    /// use totp_mfa::{OtpAuth, Secret, otp::TotpParams};
    /// let secret = Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
    /// let uri = OtpAuth::totp(Some("Example"), "alice", secret, TotpParams::default())
    ///     .unwrap().to_uri();
    /// let svg = uri.to_svg().unwrap();
    /// assert!(svg.starts_with("<svg role=\"img\" aria-label=\"QR code"));
    /// ```
    pub fn to_svg(&self) -> Result<Zeroizing<String>, QrError> {
        let document = Zeroizing::new(
            self.qr()?
                .render::<svg::Color<'_>>()
                .min_dimensions(240, 240)
                .quiet_zone(true)
                .build(),
        );
        // The renderer writes `<?xml ...?><svg ...>`; an inline element needs neither the
        // declaration nor a missing accessible name.
        let element = document
            .find("<svg")
            .map_or(&document[..], |start| &document[start..]);
        let rest = element.strip_prefix("<svg").unwrap_or(element);
        let mut out = Zeroizing::new(String::with_capacity(element.len() + 80));
        out.push_str(
            "<svg role=\"img\" aria-label=\"QR code to add this account to an authenticator app\"",
        );
        out.push_str(rest);
        Ok(out)
    }

    /// The QR code as Unicode half-block characters, two modules per character cell, for a
    /// terminal, quiet zone included. Scanners need dark modules on a light field, so say
    /// which background the terminal has: on a dark one the light modules are drawn as
    /// glyphs; on a light one the dark modules are.
    ///
    /// # Errors
    /// [`QrError::TooLong`] when the URI does not fit in a QR code.
    ///
    /// ```
    /// use totp_mfa::{OtpAuth, Secret, TerminalBackground, otp::TotpParams};
    /// let secret = Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
    /// let uri = OtpAuth::totp(None, "alice", secret, TotpParams::default()).unwrap().to_uri();
    /// let dark = uri.to_terminal(TerminalBackground::Dark).unwrap();
    /// let light = uri.to_terminal(TerminalBackground::Light).unwrap();
    /// // The quiet zone is drawn as full blocks on a dark terminal, as spaces on a light one.
    /// assert!(dark.starts_with('█') && light.starts_with(' '));
    /// ```
    pub fn to_terminal(
        &self,
        background: TerminalBackground,
    ) -> Result<Zeroizing<String>, QrError> {
        let code = self.qr()?;
        let mut renderer = code.render::<unicode::Dense1x2>();
        if background == TerminalBackground::Dark {
            renderer
                .dark_color(unicode::Dense1x2::Light)
                .light_color(unicode::Dense1x2::Dark);
        }
        Ok(Zeroizing::new(renderer.quiet_zone(true).build()))
    }
}

#[cfg(feature = "png")]
impl ProvisioningUri {
    /// The QR code as a PNG image (8-bit greyscale), `module_px` pixels per module (1 to 32),
    /// with the four-module quiet zone. Needs the `png` feature.
    ///
    /// # Errors
    /// [`QrError::TooLong`] when the URI does not fit in a QR code, [`QrError::Png`] when the
    /// module size is out of range or encoding fails.
    ///
    /// ```
    /// use totp_mfa::{OtpAuth, Secret, otp::TotpParams};
    /// let secret = Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
    /// let uri = OtpAuth::totp(Some("Example"), "alice", secret, TotpParams::default())
    ///     .unwrap().to_uri();
    /// let png = uri.to_png(8).unwrap();
    /// assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    /// ```
    pub fn to_png(&self, module_px: u32) -> Result<Zeroizing<Vec<u8>>, QrError> {
        const QUIET: usize = 4;
        if !(1..=32).contains(&module_px) {
            return Err(QrError::Png);
        }
        let code = self.qr()?;
        let modules = code.width();
        let colors = code.to_colors();
        let scale = module_px as usize;
        let side = (modules + 2 * QUIET) * scale;
        let mut pixels = Zeroizing::new(vec![255u8; side * side]);
        for (i, color) in colors.iter().enumerate() {
            if *color != qrcode::Color::Dark {
                continue;
            }
            let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
            for y in my * scale..(my + 1) * scale {
                pixels[y * side + mx * scale..y * side + (mx + 1) * scale].fill(0);
            }
        }
        let mut out = Zeroizing::new(Vec::with_capacity(side * side / 4));
        {
            let mut encoder = png::Encoder::new(&mut *out, side as u32, side as u32);
            encoder.set_color(png::ColorType::Grayscale);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().map_err(|_| QrError::Png)?;
            writer.write_image_data(&pixels).map_err(|_| QrError::Png)?;
            writer.finish().map_err(|_| QrError::Png)?;
        }
        Ok(out)
    }
}

/// The background colour of the terminal a QR code is printed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TerminalBackground {
    /// Light text on a dark background (most developer terminals).
    #[default]
    Dark,
    /// Dark text on a light background (macOS Terminal's default profile, for one).
    Light,
}

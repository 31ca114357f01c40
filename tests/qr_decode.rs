//! Every rendered QR code decodes, with an independent decoder (`rqrr`), back to the exact
//! URI: SVG, terminal text on dark and light backgrounds, and PNG; short and long URIs.

#![cfg(feature = "qr")]

use totp_mfa::otp::{Algorithm, Digits, Period, TotpParams};
use totp_mfa::{OtpAuth, ProvisioningUri, Secret, TerminalBackground};

fn uris() -> Vec<ProvisioningUri> {
    let short = OtpAuth::totp(
        None,
        "a",
        Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap(),
        TotpParams::default(),
    )
    .unwrap();
    let typical = OtpAuth::totp(
        Some("Example Inc"),
        "alice@example.com",
        Secret::from_bytes(&[0xa5; 20]).unwrap(),
        TotpParams::default(),
    )
    .unwrap();
    let long = OtpAuth::totp(
        Some("Zürich Cantonal Bank – Online Banking"),
        "very.long.first.and.last.name+mfa@subdomain.example.co.uk",
        Secret::from_bytes(&[0x3c; 64]).unwrap(),
        TotpParams::default()
            .with_algorithm(Algorithm::Sha512)
            .with_digits(Digits::EIGHT)
            .with_period(Period::new(60).unwrap()),
    )
    .unwrap();
    vec![short.to_uri(), typical.to_uri(), long.to_uri()]
}

/// Decodes a greyscale bitmap (0 = black) with rqrr; exactly one QR code must be found.
fn decode(width: usize, height: usize, dark: impl Fn(usize, usize) -> bool) -> String {
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        if dark(x, y) { 0 } else { 255 }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "expected one QR code");
    let (_, content) = grids[0].decode().expect("decodes");
    content
}

/// Rasterizes the SVG our renderer writes: one background rect and one path of
/// `M{x} {y}h{w}v{h}H{x}V{y}` rectangles.
fn rasterize_svg(svg: &str) -> (usize, usize, Vec<bool>) {
    let attr = |name: &str| -> usize {
        let start = svg.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        svg[start..].split('"').next().unwrap().parse().unwrap()
    };
    let (w, h) = (attr("width"), attr("height"));
    let mut px = vec![false; w * h];
    let d_start = svg.find(" d=\"").unwrap() + 4;
    let d = svg[d_start..].split('"').next().unwrap();
    for rect in d.split('M').filter(|r| !r.is_empty()) {
        // "{x} {y}h{w}v{h}H{x}V{y}"
        let (xy, rest) = rect.split_once('h').unwrap();
        let (x, y) = xy.split_once(' ').unwrap();
        let (rw, rest) = rest.split_once('v').unwrap();
        let rh = rest.split_once('H').unwrap().0;
        let (x, y, rw, rh): (usize, usize, usize, usize) = (
            x.parse().unwrap(),
            y.parse().unwrap(),
            rw.parse().unwrap(),
            rh.parse().unwrap(),
        );
        for yy in y..y + rh {
            for xx in x..x + rw {
                px[yy * w + xx] = true;
            }
        }
    }
    (w, h, px)
}

#[test]
fn svg_decodes_to_the_uri() {
    for uri in uris() {
        let svg = uri.to_svg().unwrap();
        assert!(svg.contains("width=\"") && svg.contains("viewBox"));
        let (w, h, px) = rasterize_svg(&svg);
        assert!(w >= 240 && h >= 240, "{w}x{h}");
        // A quiet zone of light pixels around the code.
        assert!(!px[0] && !px[w * h - 1]);
        assert_eq!(decode(w, h, |x, y| px[y * w + x]), uri.as_str());
    }
}

#[test]
fn terminal_text_decodes_on_dark_and_light_backgrounds() {
    const SCALE: usize = 4;
    for uri in uris() {
        for background in [TerminalBackground::Dark, TerminalBackground::Light] {
            let text = uri.to_terminal(background).unwrap();
            let rows: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
            let cols = rows[0].len();
            assert!(rows.iter().all(|r| r.len() == cols));
            // Each character cell is two modules stacked; a glyph half is "ink".
            let mut modules = vec![vec![false; cols]; rows.len() * 2];
            for (r, row) in rows.iter().enumerate() {
                for (c, ch) in row.iter().enumerate() {
                    let (top, bottom) = match ch {
                        '█' => (true, true),
                        '▀' => (true, false),
                        '▄' => (false, true),
                        ' ' => (false, false),
                        other => panic!("unexpected character {other:?}"),
                    };
                    modules[2 * r][c] = top;
                    modules[2 * r + 1][c] = bottom;
                }
            }
            // On a dark background the ink is light; on a light one it is dark.
            let ink_is_dark = background == TerminalBackground::Light;
            let (w, h) = (cols * SCALE, modules.len() * SCALE);
            let decoded = decode(w, h, |x, y| modules[y / SCALE][x / SCALE] == ink_is_dark);
            assert_eq!(decoded, uri.as_str(), "{background:?}");
        }
    }
}

#[cfg(feature = "png")]
#[test]
fn png_decodes_to_the_uri() {
    for uri in uris() {
        for module_px in [1, 4, 8] {
            let png = uri.to_png(module_px).unwrap();
            let decoder = png::Decoder::new(std::io::Cursor::new(png.to_vec()));
            let mut reader = decoder.read_info().unwrap();
            let mut buf = vec![0; reader.output_buffer_size().unwrap()];
            let info = reader.next_frame(&mut buf).unwrap();
            assert_eq!(info.color_type, png::ColorType::Grayscale);
            let (w, h) = (info.width as usize, info.height as usize);
            // The image is the code plus a four-module quiet zone, exactly.
            assert_eq!(w, h);
            assert_eq!(w % module_px as usize, 0);
            let scale = if module_px < 3 { 4 } else { 1 };
            let decoded = decode(w * scale, h * scale, |x, y| {
                buf[(y / scale) * w + x / scale] < 128
            });
            assert_eq!(decoded, uri.as_str(), "module_px {module_px}");
        }
    }
    let uri = &uris()[0];
    assert!(matches!(uri.to_png(0), Err(totp_mfa::QrError::Png)));
    assert!(matches!(uri.to_png(33), Err(totp_mfa::QrError::Png)));
}

#[test]
fn an_overlong_uri_is_a_typed_error() {
    // The longest names a URI may carry, all percent-encoded (each "é" is 6 characters),
    // twice for the issuer, plus a 128-byte secret: past the 2,331 bytes a version-40 code
    // holds at level M.
    let name = "é".repeat(128);
    let uri = OtpAuth::totp(
        Some(&name),
        &name,
        Secret::from_bytes(&[1; 128]).unwrap(),
        TotpParams::default(),
    )
    .unwrap()
    .to_uri();
    assert!(uri.as_str().len() > 2_331, "{}", uri.as_str().len());
    assert!(matches!(uri.to_svg(), Err(totp_mfa::QrError::TooLong)));
    assert!(matches!(
        uri.to_terminal(TerminalBackground::Dark),
        Err(totp_mfa::QrError::TooLong)
    ));
    // Half the length still fits.
    let half = "é".repeat(40);
    let uri = OtpAuth::totp(
        Some(&half),
        &half,
        Secret::from_bytes(&[1; 64]).unwrap(),
        TotpParams::default(),
    )
    .unwrap()
    .to_uri();
    assert!(uri.to_svg().is_ok());
}

//! `cargo run -p totp-mfa-web`: the example server on http://127.0.0.1:3000/.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match totp_mfa_web::Config::from_args(std::env::args().skip(1), |k| {
        std::env::var(k).ok()
    }) {
        Ok(Some(config)) => config,
        Ok(None) => {
            print!("{}", totp_mfa_web::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{}", totp_mfa_web::USAGE);
            return ExitCode::from(2);
        }
    };
    match totp_mfa_web::serve(&config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

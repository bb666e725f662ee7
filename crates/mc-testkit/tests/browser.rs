//! The WebDriver client's own failure: a missing chromedriver says how to install it. (Its
//! happy path runs in crates/mc-runtime/tests/loopback.rs and the Keycloak suite.)

use mc_testkit::browser::{BrowserError, ChromeDriver};

#[tokio::test]
async fn a_missing_chromedriver_names_the_install_script() {
    // The only test of this binary, so changing the environment races with nothing.
    std::env::set_var("MC_CHROMEDRIVER", "/nonexistent/chromedriver");
    let error = ChromeDriver::start().await.unwrap_err();
    assert!(matches!(error, BrowserError::NotInstalled(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("/nonexistent/chromedriver"), "{message}");
    assert!(message.contains("scripts/install-chromium.sh"), "{message}");
}

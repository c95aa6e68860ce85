//! IAM least privilege, measured: which AWS API operations each function performs in
//! the local run, and which IAM actions its role grants in template.yaml.
//!
//! The SDK clients the local stack builds carry an interceptor ([`CallRecorder`]) that
//! records every operation (`dynamodb:GetItem`, `secretsmanager:PutSecretValue` …)
//! under the function running it: the gateway and the local SQS worker run each
//! handler inside [`acting_as`], a `tokio::task_local!` naming the function. Anything
//! else (the test harness, creating the table and the queues) runs outside any
//! function and is not attributed. `tests/tests/iam.rs` compares the two.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context as _};
use aws_sdk_dynamodb::config::{ConfigBag, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

use crate::gateway::Function;

tokio::task_local! {
    static CURRENT: Function;
}

/// Runs `fut` as `function`: the AWS calls it makes are recorded under that function
/// (and so checked against its role).
pub fn acting_as<F: Future>(function: Function, fut: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(function, fut)
}

/// The function the current task is acting as, if any.
pub fn current_function() -> Option<Function> {
    CURRENT.try_with(|f| *f).ok()
}

/// The IAM action of an SDK operation: the service's IAM prefix and the operation's
/// name (DynamoDB's and Secrets Manager's actions have their operations' names, batch
/// and transaction operations included). An unknown service keeps its SDK name, which no
/// policy grants: the comparison then fails, naming it.
pub fn iam_action(service: &str, operation: &str) -> String {
    // SQS has no actions of its own for its batch operations: SendMessage authorizes
    // SendMessageBatch, and so on.
    let operation = match (service, operation) {
        ("SQS", "SendMessageBatch") => "SendMessage",
        ("SQS", "DeleteMessageBatch") => "DeleteMessage",
        ("SQS", "ChangeMessageVisibilityBatch") => "ChangeMessageVisibility",
        (_, operation) => operation,
    };
    let prefix = match service {
        "DynamoDB" => "dynamodb",
        "Secrets Manager" | "SecretsManager" => "secretsmanager",
        "SQS" => "sqs",
        other => return format!("unmapped-sdk-service({other}):{operation}"),
    };
    format!("{prefix}:{operation}")
}

/// An SDK operation's input, as a fault rule sees it (downcast it to the operation's).
pub use aws_smithy_runtime_api::client::interceptors::context::Input as OperationInput;

/// Decides from an operation's name and input whether it fails (see
/// [`CallRecorder::inject_fault`]).
pub type FaultRule = Arc<dyn Fn(&str, &OperationInput) -> bool + Send + Sync>;

/// Every operation performed by a function, counted, shared by the clients it is
/// attached to; and the store faults a test injects.
#[derive(Clone, Default)]
pub struct CallRecorder {
    calls: Arc<Mutex<BTreeMap<Function, BTreeMap<String, u64>>>>,
    fault: Arc<Mutex<Option<FaultRule>>>,
}

impl std::fmt::Debug for CallRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallRecorder").finish_non_exhaustive()
    }
}

impl CallRecorder {
    pub fn new() -> CallRecorder {
        CallRecorder::default()
    }

    /// Every operation `rule` picks fails before it is sent, as a store fault would
    /// (None: no more faults). The clients the stack built carry it.
    pub fn inject_fault(&self, rule: Option<FaultRule>) {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = rule;
    }

    pub fn record(&self, function: Function, action: String) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        *calls
            .entry(function)
            .or_default()
            .entry(action)
            .or_default() += 1;
    }

    /// action → count, per function.
    pub fn snapshot(&self) -> BTreeMap<Function, BTreeMap<String, u64>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The IAM actions `function` has performed.
    pub fn actions(&self, function: Function) -> BTreeSet<String> {
        self.snapshot()
            .remove(&function)
            .map(|a| a.into_keys().collect())
            .unwrap_or_default()
    }

    pub fn dynamodb(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    pub fn secretsmanager(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_secretsmanager::Client {
        let config = aws_sdk_secretsmanager::config::Builder::from(sdk)
            .interceptor(self.clone())
            .build();
        aws_sdk_secretsmanager::Client::from_conf(config)
    }

    pub fn sqs(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::config::Builder::from(sdk)
            .interceptor(self.clone())
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }
}

impl Intercept for CallRecorder {
    fn name(&self) -> &'static str {
        "seatscope-local IAM call recorder"
    }

    /// Once per operation (not per retry): an attempt that fails (NotFound, a failed
    /// condition) needed the permission all the same. Not `read_before_execution`: a
    /// client's interceptors run that before the operation's Metadata is in the bag.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let metadata = cfg
            .load::<Metadata>()
            .ok_or("an SDK operation without Metadata: its name is unknown")?;
        // IAM has no action for a transaction: each item needs its own write's.
        let transaction = context
            .input()
            .downcast_ref::<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput>();
        let actions: Vec<String> = match transaction {
            Some(input) => input
                .transact_items()
                .iter()
                .map(|item| {
                    let op = if item.put().is_some() {
                        "PutItem"
                    } else if item.update().is_some() {
                        "UpdateItem"
                    } else if item.delete().is_some() {
                        "DeleteItem"
                    } else {
                        "ConditionCheckItem"
                    };
                    iam_action(metadata.service(), op)
                })
                .collect(),
            None => vec![iam_action(metadata.service(), metadata.name())],
        };
        if let Some(function) = current_function() {
            for action in actions {
                self.record(function, action);
            }
        }
        if let Some(fault) = self
            .fault
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            if fault(metadata.name(), context.input()) {
                return Err("a fault injected into the store (CallRecorder::inject_fault)".into());
            }
        }
        Ok(())
    }
}

/// What a function's role allows, as template.yaml declares it.
#[derive(Debug, Clone)]
pub struct RoleGrants {
    pub function_id: String,
    pub role_id: String,
    /// The actions of the role's inline policies' Allow statements, as written
    /// (`dynamodb:Query` granted on the table and on an index is one action here).
    pub allowed: BTreeSet<String>,
}

/// Whether an IAM action pattern (`*` wildcards, case-insensitive as IAM compares
/// actions) covers `action`.
pub fn covers(pattern: &str, action: &str) -> bool {
    fn glob(p: &[u8], a: &[u8]) -> bool {
        match p.split_first() {
            None => a.is_empty(),
            Some((b'*', rest)) => (0..=a.len()).any(|i| glob(rest, &a[i..])),
            Some((c, rest)) => a
                .split_first()
                .is_some_and(|(d, a)| c.eq_ignore_ascii_case(d) && glob(rest, a)),
        }
    }
    glob(pattern.as_bytes(), action.as_bytes())
}

fn plain(v: &serde_yaml::Value) -> Option<&str> {
    match v {
        serde_yaml::Value::String(s) => Some(s),
        serde_yaml::Value::Tagged(t) => plain(&t.value),
        _ => None,
    }
}

/// The logical id of the role in a function's `Role:` (`!GetAtt X.Arn`,
/// `!GetAtt [X, Arn]`, `{"Fn::GetAtt": [X, Arn]}` or `!Ref X`).
fn role_logical_id(role: &serde_yaml::Value) -> Option<String> {
    let target = match role {
        serde_yaml::Value::Tagged(t) if t.tag == "GetAtt" || t.tag == "Ref" => &t.value,
        serde_yaml::Value::Mapping(m) => m
            .get("Fn::GetAtt")
            .or_else(|| m.get("Ref"))
            .filter(|_| m.len() == 1)?,
        _ => return None,
    };
    match target {
        serde_yaml::Value::String(s) => Some(s.split('.').next()?.to_string()),
        serde_yaml::Value::Sequence(parts) => parts.first().and_then(plain).map(str::to_string),
        _ => None,
    }
}

/// Every function's role grants, by function, from the template's text.
pub fn role_grants_from_str(yaml: &str) -> anyhow::Result<BTreeMap<Function, RoleGrants>> {
    let doc: serde_yaml::Value = serde_yaml::from_str(yaml).context("parsing the template")?;
    let resources = doc
        .get("Resources")
        .and_then(|r| r.as_mapping())
        .ok_or_else(|| anyhow!("the template has no Resources"))?;
    let mut out = BTreeMap::new();
    for (id, resource) in resources {
        if resource.get("Type").and_then(plain) != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = plain(id).unwrap_or_default().to_string();
        let binary = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(plain)
            .ok_or_else(|| anyhow!("{id} has no Metadata.BuildProperties.Binary"))?;
        let function = Function::from_binary(binary)?;
        let properties = resource
            .get("Properties")
            .ok_or_else(|| anyhow!("{id} has no Properties"))?;
        if properties.get("Policies").is_some() {
            bail!("{id} has SAM Policies: every function's permissions must be its own Role");
        }
        let role_id = properties
            .get("Role")
            .and_then(role_logical_id)
            .ok_or_else(|| anyhow!("{id}.Properties.Role is not a role of this template"))?;
        let role = resources
            .get(role_id.as_str())
            .filter(|r| r.get("Type").and_then(plain) == Some("AWS::IAM::Role"))
            .ok_or_else(|| anyhow!("{id}'s Role {role_id} is not an AWS::IAM::Role here"))?;
        let mut allowed = BTreeSet::new();
        let policies = role
            .get("Properties")
            .and_then(|p| p.get("Policies"))
            .and_then(|p| p.as_sequence())
            .into_iter()
            .flatten();
        for (p, policy) in policies.enumerate() {
            let statements = policy
                .get("PolicyDocument")
                .and_then(|d| d.get("Statement"))
                .ok_or_else(|| {
                    anyhow!("{role_id}.Policies[{p}] has no PolicyDocument.Statement")
                })?;
            let statements = match statements {
                serde_yaml::Value::Sequence(s) => s.iter().collect::<Vec<_>>(),
                one => vec![one],
            };
            for (s, statement) in statements.into_iter().enumerate() {
                let at = format!("{role_id}.Policies[{p}].Statement[{s}]");
                if statement.get("NotAction").is_some() {
                    bail!("{at} uses NotAction: what it grants cannot be listed");
                }
                match statement.get("Effect").and_then(plain) {
                    Some("Allow") => {}
                    Some("Deny") => continue,
                    other => bail!("{at} has Effect {other:?}"),
                }
                let actions = statement
                    .get("Action")
                    .ok_or_else(|| anyhow!("{at} has no Action"))?;
                let actions = match actions {
                    serde_yaml::Value::Sequence(list) => list.iter().collect::<Vec<_>>(),
                    one => vec![one],
                };
                for action in actions {
                    let action =
                        plain(action).ok_or_else(|| anyhow!("{at}: an Action is not a string"))?;
                    allowed.insert(action.to_string());
                }
            }
        }
        out.insert(
            function,
            RoleGrants {
                function_id: id,
                role_id,
                allowed,
            },
        );
    }
    Ok(out)
}

pub fn role_grants(template: &Path) -> anyhow::Result<BTreeMap<Function, RoleGrants>> {
    let text = std::fs::read_to_string(template)
        .with_context(|| format!("reading {}", template.display()))?;
    role_grants_from_str(&text).with_context(|| format!("in {}", template.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = r#"
Resources:
  SyncFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties: { Binary: scheduled-sync }
    Properties:
      Role: !GetAtt SyncRole.Arn
  ApiFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties: { Binary: dashboard-api }
    Properties:
      Role: { "Fn::GetAtt": [ApiRole, Arn] }
  SyncRole:
    Type: AWS::IAM::Role
    Properties:
      ManagedPolicyArns: !If [Vpc, [!Sub "arn:aws:iam::aws:policy/x"], !Ref AWS::NoValue]
      Policies:
        - PolicyName: a
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: [dynamodb:GetItem, dynamodb:Query]
                Resource: !GetAtt T.Arn
              - Effect: Allow
                Action: dynamodb:Query
                Resource: !Sub ${T.Arn}/index/I
              - Effect: Deny
                Action: secretsmanager:CreateSecret
                Resource: "*"
  ApiRole:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: b
          PolicyDocument:
            Statement:
              Effect: Allow
              Action: sqs:*
              Resource: "*"
"#;

    #[test]
    fn role_grants_follow_each_functions_role_and_keep_only_allows() {
        let grants = role_grants_from_str(FIXTURE).unwrap();
        let sync = &grants[&Function::ScheduledSync];
        assert_eq!(sync.role_id, "SyncRole");
        assert_eq!(sync.function_id, "SyncFunction");
        assert_eq!(
            sync.allowed.iter().collect::<Vec<_>>(),
            ["dynamodb:GetItem", "dynamodb:Query"]
        );
        let api = &grants[&Function::DashboardApi];
        assert_eq!(api.role_id, "ApiRole");
        assert_eq!(api.allowed.iter().collect::<Vec<_>>(), ["sqs:*"]);
    }

    #[test]
    fn sam_policies_and_not_action_are_refused() {
        let sam = FIXTURE.replace(
            "      Role: !GetAtt SyncRole.Arn",
            "      Policies: [DynamoDBCrudPolicy: {TableName: t}]",
        );
        let e = format!("{:#}", role_grants_from_str(&sam).unwrap_err());
        assert!(e.contains("SyncFunction has SAM Policies"), "{e}");
        let not = FIXTURE.replace("Action: sqs:*", "NotAction: sqs:*");
        let e = format!("{:#}", role_grants_from_str(&not).unwrap_err());
        assert!(
            e.contains("ApiRole.Policies[0].Statement[0] uses NotAction"),
            "{e}"
        );
    }

    #[test]
    fn actions_and_patterns() {
        assert_eq!(iam_action("DynamoDB", "GetItem"), "dynamodb:GetItem");
        assert_eq!(
            iam_action("Secrets Manager", "RestoreSecret"),
            "secretsmanager:RestoreSecret"
        );
        assert_eq!(iam_action("SQS", "SendMessage"), "sqs:SendMessage");
        assert_eq!(iam_action("SQS", "SendMessageBatch"), "sqs:SendMessage");
        assert_eq!(
            iam_action("DynamoDB", "BatchGetItem"),
            "dynamodb:BatchGetItem"
        );
        assert!(covers("sqs:*", "sqs:SendMessage"));
        assert!(covers("dynamodb:getitem", "dynamodb:GetItem"));
        assert!(!covers("dynamodb:Get*", "dynamodb:BatchGetItem"));
        assert!(!covers("dynamodb:GetItem", "dynamodb:GetItems"));
    }

    #[tokio::test]
    async fn calls_are_recorded_only_inside_a_function() {
        let recorder = CallRecorder::new();
        let sdk = crate::services::local_sdk_config("http://127.0.0.1:9").await;
        let ddb = recorder.dynamodb(&sdk);
        // Nothing listens on port 9: the calls fail, but they were attempted.
        let _ = ddb.get_item().table_name("t").send().await;
        assert!(recorder.snapshot().is_empty());
        acting_as(Function::DashboardApi, async {
            let _ = ddb.get_item().table_name("t").send().await;
            let _ = ddb.get_item().table_name("t").send().await;
        })
        .await;
        assert_eq!(
            recorder.snapshot()[&Function::DashboardApi]["dynamodb:GetItem"],
            2
        );
        assert!(recorder.actions(Function::ConnectStart).is_empty());
    }
}

//! A local stand-in for Lambda's SQS event source mapping: creates the sync queue
//! and its DLQ in moto as template.yaml declares them, receives messages, hands
//! them to scheduled-sync as a real SQS event (`aws_lambda_events::sqs::SqsEvent`
//! through `LambdaEvent`, with a context deadline like Lambda's) and deletes every
//! message the handler did not report in `batchItemFailures`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use seatscope_core::ops::sync::TickReport;
use seatscope_core::Deps;
use serde_json::{json, Value};

use crate::gateway::Function;
use crate::iam::acting_as;

pub const QUEUE_LOGICAL_ID: &str = "SyncQueue";
pub const DLQ_LOGICAL_ID: &str = "SyncDeadLetterQueue";
pub const FUNCTION_LOGICAL_ID: &str = "ScheduledSyncFunction";

/// What template.yaml says about the queue and its consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub visibility_timeout_secs: u32,
    pub max_receive_count: u32,
    pub dlq_retention_secs: u32,
    /// The event source mapping's BatchSize.
    pub batch_size: usize,
    /// The function's Timeout: each invocation's deadline.
    pub function_timeout_secs: u64,
    /// The SQS event's ScalingConfig.MaximumConcurrency: at most this many invocations
    /// at once (None: up to the event source's own bound, 1,000).
    pub maximum_concurrency: Option<usize>,
}

fn number(v: Option<&serde_yaml::Value>) -> Option<u64> {
    match v? {
        serde_yaml::Value::Number(n) => n.as_u64(),
        serde_yaml::Value::String(s) => s.parse().ok(),
        serde_yaml::Value::Tagged(t) => number(Some(&t.value)),
        _ => None,
    }
}

impl QueueSpec {
    pub fn from_template(template: &Path) -> anyhow::Result<QueueSpec> {
        let text = std::fs::read_to_string(template)
            .with_context(|| format!("reading {}", template.display()))?;
        let doc: serde_yaml::Value = serde_yaml::from_str(&text)?;
        let resource = |id: &str| {
            doc.get("Resources")
                .and_then(|r| r.get(id))
                .and_then(|r| r.get("Properties"))
                .ok_or_else(|| anyhow!("template.yaml has no Resources.{id}.Properties"))
        };
        let queue = resource(QUEUE_LOGICAL_ID)?;
        let dlq = resource(DLQ_LOGICAL_ID)?;
        let function = resource(FUNCTION_LOGICAL_ID)?;
        let sqs_event = function
            .get("Events")
            .and_then(|e| e.as_mapping())
            .into_iter()
            .flatten()
            .map(|(_, e)| e)
            .find(|e| e.get("Type").and_then(|t| t.as_str()) == Some("SQS"))
            .ok_or_else(|| anyhow!("{FUNCTION_LOGICAL_ID} has no SQS event"))?;
        let missing = |what: &str| anyhow!("template.yaml: {what} is missing or not a number");
        Ok(QueueSpec {
            visibility_timeout_secs: number(queue.get("VisibilityTimeout"))
                .ok_or_else(|| missing("SyncQueue.VisibilityTimeout"))?
                as u32,
            max_receive_count: number(
                queue
                    .get("RedrivePolicy")
                    .and_then(|r| r.get("maxReceiveCount")),
            )
            .ok_or_else(|| missing("SyncQueue.RedrivePolicy.maxReceiveCount"))?
                as u32,
            dlq_retention_secs: number(dlq.get("MessageRetentionPeriod"))
                .ok_or_else(|| missing("SyncDeadLetterQueue.MessageRetentionPeriod"))?
                as u32,
            batch_size: number(sqs_event.get("Properties").and_then(|p| p.get("BatchSize")))
                .ok_or_else(|| missing("the SQS event's BatchSize"))?
                as usize,
            function_timeout_secs: number(function.get("Timeout"))
                .ok_or_else(|| missing("ScheduledSyncFunction.Timeout"))?,
            maximum_concurrency: number(
                sqs_event
                    .get("Properties")
                    .and_then(|p| p.get("ScalingConfig"))
                    .and_then(|c| c.get("MaximumConcurrency")),
            )
            .map(|n| n as usize),
        })
    }
}

/// What `drain_concurrently` counts while it runs (read by a progress line).
#[derive(Debug, Default)]
pub struct DrainMeter {
    /// Invocations running now, and the most at once.
    pub in_flight: std::sync::atomic::AtomicUsize,
    pub peak: std::sync::atomic::AtomicUsize,
    /// Invocations (batches) and the messages they carried.
    pub batches: std::sync::atomic::AtomicUsize,
    pub messages: std::sync::atomic::AtomicUsize,
    /// Runs that synced; runs skipped, failed or continued.
    pub synced: std::sync::atomic::AtomicUsize,
    pub other: std::sync::atomic::AtomicUsize,
    /// The invocations' wall time added up (what Lambda bills), milliseconds.
    pub busy_ms: std::sync::atomic::AtomicU64,
}

/// The queue, its DLQ and the poller that feeds scheduled-sync.
#[derive(Clone)]
pub struct LocalSyncWorker {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
    pub spec: QueueSpec,
    /// Invocations of scheduled-sync running at once (Lambda scales out per batch).
    pub concurrency: usize,
}

async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await?;
    out.attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| anyhow!("moto returned no QueueArn for {url}"))
}

impl LocalSyncWorker {
    /// Creates `<name>` and `<name>-dlq` in moto as template.yaml declares them.
    pub async fn create(
        client: aws_sdk_sqs::Client,
        template: &Path,
        name: &str,
    ) -> anyhow::Result<LocalSyncWorker> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let spec = QueueSpec::from_template(template)?;
        let dlq_url = client
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .attributes(
                A::MessageRetentionPeriod,
                spec.dlq_retention_secs.to_string(),
            )
            .send()
            .await
            .context("creating the DLQ in moto")?
            .queue_url
            .ok_or_else(|| anyhow!("moto returned no DLQ url"))?;
        let dlq_arn = queue_arn(&client, &dlq_url).await?;
        let redrive =
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receive_count});
        let queue_url = client
            .create_queue()
            .queue_name(name)
            .attributes(
                A::VisibilityTimeout,
                spec.visibility_timeout_secs.to_string(),
            )
            .attributes(A::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .context("creating the sync queue in moto")?
            .queue_url
            .ok_or_else(|| anyhow!("moto returned no queue url"))?;
        // Creating the event source mapping, Lambda reads the queue's attributes with the
        // function's role (which is why the role needs sqs:GetQueueAttributes).
        let queue_arn = acting_as(Function::ScheduledSync, queue_arn(&client, &queue_url)).await?;
        Ok(LocalSyncWorker {
            client,
            queue_url,
            queue_arn,
            dlq_url,
            spec,
            concurrency: 4,
        })
    }

    /// Receives and hands over batches until the queue has nothing visible; every
    /// invocation gets the template's function timeout as its deadline.
    pub async fn drain(&self, deps: &Arc<Deps>) -> anyhow::Result<TickReport> {
        self.drain_with_deadline(deps, Duration::from_secs(self.spec.function_timeout_secs))
            .await
    }

    /// Like `drain`, with each invocation's deadline `timeout` after it starts.
    pub async fn drain_with_deadline(
        &self,
        deps: &Arc<Deps>,
        timeout: Duration,
    ) -> anyhow::Result<TickReport> {
        let mut report = TickReport::default();
        loop {
            // Lambda's event source mapping receives and deletes with the function's
            // role, so its calls are the function's for the IAM check (`iam`).
            let received = acting_as(
                Function::ScheduledSync,
                self.client
                    .receive_message()
                    .queue_url(&self.queue_url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(0)
                    .message_system_attribute_names(
                        aws_sdk_sqs::types::MessageSystemAttributeName::All,
                    )
                    .send(),
            )
            .await
            .context("receiving from the sync queue")?;
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(report);
            }
            let batches: Vec<Vec<aws_sdk_sqs::types::Message>> = messages
                .chunks(self.spec.batch_size.max(1))
                .map(<[_]>::to_vec)
                .collect();
            for wave in batches.chunks(self.concurrency.max(1)) {
                let runs = wave.iter().map(|batch| {
                    acting_as(Function::ScheduledSync, self.invoke(deps, batch, timeout))
                });
                for outcome in futures::future::join_all(runs).await {
                    report.add(&outcome?);
                }
            }
        }
    }

    /// Drains the queue as Lambda's event source mapping does at scale: `pollers`
    /// loops at once, each receiving up to BatchSize messages and invoking the function
    /// with them, so up to `pollers` invocations run concurrently. Stops when the queue
    /// stays empty with no invocation in flight (a continuation enqueued meanwhile is
    /// picked up). `meter` counts invocations in flight (and their peak), batches and
    /// the runs' outcomes as they finish.
    pub async fn drain_concurrently(
        &self,
        deps: &Arc<Deps>,
        pollers: usize,
        meter: &DrainMeter,
    ) -> anyhow::Result<TickReport> {
        use std::sync::atomic::Ordering::SeqCst;
        let timeout = Duration::from_secs(self.spec.function_timeout_secs);
        let poll = || async {
            let mut report = TickReport::default();
            loop {
                let received = acting_as(
                    Function::ScheduledSync,
                    self.client
                        .receive_message()
                        .queue_url(&self.queue_url)
                        .max_number_of_messages(self.spec.batch_size.clamp(1, 10) as i32)
                        .wait_time_seconds(0)
                        .message_system_attribute_names(
                            aws_sdk_sqs::types::MessageSystemAttributeName::All,
                        )
                        .send(),
                )
                .await
                .context("receiving from the sync queue")?;
                let messages = received.messages.unwrap_or_default();
                if messages.is_empty() {
                    if meter.in_flight.load(SeqCst) == 0 {
                        return anyhow::Ok(report);
                    }
                    // Others are still running and may enqueue a continuation.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                let now = meter.in_flight.fetch_add(1, SeqCst) + 1;
                meter.peak.fetch_max(now, SeqCst);
                meter.batches.fetch_add(1, SeqCst);
                meter.messages.fetch_add(messages.len(), SeqCst);
                let started = std::time::Instant::now();
                let outcome = acting_as(
                    Function::ScheduledSync,
                    self.invoke(deps, &messages, timeout),
                )
                .await;
                meter
                    .busy_ms
                    .fetch_add(started.elapsed().as_millis() as u64, SeqCst);
                meter.in_flight.fetch_sub(1, SeqCst);
                let outcome = outcome?;
                meter.synced.fetch_add(outcome.synced, SeqCst);
                meter
                    .other
                    .fetch_add(outcome.skipped + outcome.failed + outcome.continued, SeqCst);
                report.add(&outcome);
            }
        };
        let mut report = TickReport::default();
        for outcome in futures::future::join_all((0..pollers.max(1)).map(|_| poll())).await {
            report.add(&outcome?);
        }
        Ok(report)
    }

    /// One invocation with one batch, then deletes what did not fail.
    async fn invoke(
        &self,
        deps: &Deps,
        batch: &[aws_sdk_sqs::types::Message],
        timeout: Duration,
    ) -> anyhow::Result<TickReport> {
        let event = self.sqs_event(batch);
        // The exact shape Lambda delivers must parse as the runtime's SQS event.
        let event: scheduled_sync::SyncEvent = serde_json::from_value(event)
            .context("the local SQS event does not parse as an SqsEvent")?;
        anyhow::ensure!(
            matches!(event, scheduled_sync::SyncEvent::Batch(_)),
            "the local SQS event reads as a tick"
        );
        let mut context = lambda_runtime::Context::default();
        context.request_id = format!(
            "local-sqs-{}",
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        );
        context.deadline = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
            as u64
            + timeout.as_millis() as u64;
        let response =
            scheduled_sync::handle(deps, lambda_runtime::LambdaEvent::new(event, context))
                .await
                .map_err(|e| anyhow!("scheduled-sync failed on an SQS batch: {}", e.0))?;
        let scheduled_sync::SyncResponse::Batch(outcome) = response else {
            return Err(anyhow!("scheduled-sync answered an SQS event like a tick"));
        };
        let failed: Vec<&str> = outcome
            .response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        for message in batch {
            let id = message.message_id().unwrap_or_default();
            if failed.contains(&id) {
                continue;
            }
            if let Some(handle) = message.receipt_handle() {
                self.client
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .context("deleting a handled message")?;
            }
        }
        Ok(outcome.report)
    }

    fn sqs_event(&self, batch: &[aws_sdk_sqs::types::Message]) -> Value {
        let records: Vec<Value> = batch
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Value> = m
                    .attributes()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_string(), json!(v)))
                    .collect();
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        json!({ "Records": records })
    }

    /// Messages visible in the queue and the DLQ now (approximate, as SQS says).
    pub async fn depth(&self) -> anyhow::Result<(u64, u64)> {
        let count = |url: String| async move {
            let out = self
                .client
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(
                    aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
                )
                .send()
                .await?;
            anyhow::Ok(
                out.attributes()
                    .and_then(|a| {
                        a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                    })
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )
        };
        Ok((
            count(self.queue_url.clone()).await?,
            count(self.dlq_url.clone()).await?,
        ))
    }
}

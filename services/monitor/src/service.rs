//! The Monitor gRPC service: `Subscribe` streams alerts as they are decided, filtered by
//! entity, topic, rule and state. Filters are checked at the edge.

use crate::alert::Alert;
use crate::config::KeyKind;
use crate::error::SubscribeError;
use longview_proto::v1::{self as pb, monitor_server::Monitor};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::broadcast;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Alerts a subscriber may fall behind by before it is dropped.
const HUB_CAPACITY: usize = 1_024;
/// Entries per filter list.
const MAX_FILTERS: usize = 256;

/// Fans alerts out to every subscriber.
#[derive(Clone, Debug)]
pub struct AlertHub {
    sender: broadcast::Sender<Arc<Alert>>,
    rules: Arc<Vec<String>>,
}

impl AlertHub {
    /// A hub for alerts of these rules.
    pub fn new(rules: Vec<String>) -> Self {
        Self {
            sender: broadcast::channel(HUB_CAPACITY).0,
            rules: Arc::new(rules),
        }
    }

    pub fn publish(&self, alert: Alert) {
        // No subscribers is fine: alerts also go to Kafka and logs.
        let _ = self.sender.send(Arc::new(alert));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Alert>> {
        self.sender.subscribe()
    }
}

/// A validated subscription.
#[derive(Debug, Default)]
struct Filter {
    entities: Vec<String>,
    topics: Vec<String>,
    rules: Vec<String>,
    states: Vec<String>,
}

impl Filter {
    fn new(request: pb::SubscribeRequest, known: &[String]) -> Result<Self, SubscribeError> {
        check("entities", &request.entities)?;
        check("topics", &request.topics)?;
        check("rules", &request.rules)?;
        check("states", &request.states)?;
        for (index, name) in request.rules.iter().enumerate() {
            if !known.contains(name) {
                let known = known.join(", ");
                let name = name.clone();
                return Err(SubscribeError::UnknownRule { index, name, known });
            }
        }
        for (index, value) in request.states.iter().enumerate() {
            if value != "raised" && value != "cleared" {
                let value = value.clone();
                return Err(SubscribeError::BadState { index, value });
            }
        }
        Ok(Self {
            entities: request.entities,
            topics: request.topics,
            rules: request.rules,
            states: request.states,
        })
    }

    /// Entity and topic filters together select alerts of either kind they name.
    fn admits(&self, alert: &Alert) -> bool {
        let any = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        let keyed = match (self.entities.is_empty(), self.topics.is_empty()) {
            (true, true) => true,
            _ => match alert.key_kind {
                KeyKind::Entity => self.entities.contains(&alert.key),
                KeyKind::Topic => self.topics.contains(&alert.key),
            },
        };
        keyed && any(&self.rules, &alert.rule) && any(&self.states, alert.state.as_str())
    }
}

fn check(field: &'static str, values: &[String]) -> Result<(), SubscribeError> {
    if values.len() > MAX_FILTERS {
        let (count, limit) = (values.len(), MAX_FILTERS);
        return Err(SubscribeError::TooManyFilters {
            field,
            count,
            limit,
        });
    }
    match values.iter().position(|v| v.trim().is_empty()) {
        Some(index) => Err(SubscribeError::EmptyFilter { field, index }),
        None => Ok(()),
    }
}

/// The gRPC service over a hub (none when this process runs no monitor).
#[derive(Debug)]
pub struct MonitorService {
    hub: Option<AlertHub>,
}

impl MonitorService {
    pub fn new(hub: Option<AlertHub>) -> Self {
        Self { hub }
    }

    pub fn into_server(self) -> pb::monitor_server::MonitorServer<Self> {
        pb::monitor_server::MonitorServer::new(self)
    }
}

type AlertStream = Pin<Box<dyn Stream<Item = Result<pb::Alert, Status>> + Send>>;

#[tonic::async_trait]
impl Monitor for MonitorService {
    type SubscribeStream = AlertStream;

    #[tracing::instrument(name = "subscribe", skip_all)]
    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let hub = self.hub.as_ref().ok_or(SubscribeError::NotRunning)?;
        let filter = Filter::new(request.into_inner(), &hub.rules)?;
        let receiver = hub.subscribe();
        tracing::info!(?filter, "subscriber joined");
        let stream = futures::stream::unfold((receiver, filter), |(mut rx, filter)| async move {
            loop {
                match rx.recv().await {
                    Ok(alert) if filter.admits(&alert) => {
                        return Some((Ok(alert.to_proto()), (rx, filter)));
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        let status = Status::from(SubscribeError::Lagged { missed });
                        return Some((Err(status), (rx, filter)));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::AlertState;

    fn alert(kind: KeyKind, key: &str, rule: &str, state: AlertState) -> Alert {
        Alert {
            id: String::new(),
            rule: rule.into(),
            key_kind: kind,
            key: key.into(),
            window_start: String::new(),
            window_end: String::new(),
            window_start_ms: 0,
            window_end_ms: 1,
            documents: 1,
            negatives: 1,
            negative_share: 1.0,
            baseline: 0.0,
            state,
            document_ids: vec![],
        }
    }

    fn known() -> Vec<String> {
        vec!["surge".into(), "topic".into()]
    }

    #[test]
    fn filters_select_by_key_rule_and_state() {
        let request = pb::SubscribeRequest {
            entities: vec!["HRBK".into()],
            topics: vec!["legal".into()],
            rules: vec![],
            states: vec!["raised".into()],
        };
        let filter = Filter::new(request, &known()).unwrap();
        let raised = AlertState::Raised;
        assert!(filter.admits(&alert(KeyKind::Entity, "HRBK", "surge", raised)));
        assert!(filter.admits(&alert(KeyKind::Topic, "legal", "topic", raised)));
        assert!(!filter.admits(&alert(KeyKind::Entity, "QLMT", "surge", raised)));
        assert!(!filter.admits(&alert(KeyKind::Topic, "HRBK", "surge", raised)));
        assert!(!filter.admits(&alert(
            KeyKind::Entity,
            "HRBK",
            "surge",
            AlertState::Cleared
        )));
        let everything = Filter::new(pb::SubscribeRequest::default(), &known()).unwrap();
        assert!(everything.admits(&alert(KeyKind::Topic, "x", "y", AlertState::Cleared)));
    }

    #[test]
    fn bad_filters_are_named() {
        let status = |request: pb::SubscribeRequest| {
            Status::from(Filter::new(request, &known()).unwrap_err())
        };
        let unknown = status(pb::SubscribeRequest {
            rules: vec!["surge".into(), "nope".into()],
            ..Default::default()
        });
        assert_eq!(unknown.code(), tonic::Code::NotFound);
        assert!(unknown.message().contains("rules[1] \"nope\""));
        let empty = status(pb::SubscribeRequest {
            entities: vec!["".into()],
            ..Default::default()
        });
        assert_eq!(empty.code(), tonic::Code::InvalidArgument);
        let many = status(pb::SubscribeRequest {
            topics: vec!["t".into(); 300],
            ..Default::default()
        });
        assert!(many.message().contains("over the limit of 256"));
        let state = status(pb::SubscribeRequest {
            states: vec!["open".into()],
            ..Default::default()
        });
        assert!(state.message().contains("states[0]"));
    }
}

//! Every synchronous request of the specification, listed by hand with the reply type a
//! reader of `spec/amqp0-9-1.xml` expects; each entry is checked at compile time (the
//! generated `SyncMethod::Reply` must be that type) and against the XML at run time (the
//! reply ids, and that the list misses no request and names no method the spec does not mark
//! synchronous).

use std::collections::BTreeSet;

use amqp_wire::{
    basic, channel, confirm, connection, exchange, queue, tx, AmqpMethod, Method, SyncMethod,
};

/// What one entry of the list checks; `R` must be exactly `M::Reply`.
struct Entry {
    name: &'static str,
    reply_ids: &'static [(u16, u16)],
    /// Each response, converted into the reply type and back.
    round_trips: bool,
}

fn entry<M, R>(responses: Vec<Method>) -> Entry
where
    M: SyncMethod<Reply = R>,
    R: TryFrom<Method, Error = Method> + Into<Method>,
{
    let round_trips = !responses.is_empty()
        && responses.into_iter().all(|m| {
            R::try_from(m.clone()).map(Into::into).as_ref() == Ok(&m)
                && M::REPLY_IDS.contains(&(m.class_id(), m.method_id()))
        });
    Entry {
        name: M::NAME,
        reply_ids: M::REPLY_IDS,
        round_trips,
    }
}

fn listed() -> Vec<Entry> {
    use Method as M;
    vec![
        entry::<connection::Start, connection::StartOk>(vec![M::from(
            connection::StartOk::default(),
        )]),
        entry::<connection::Secure, connection::SecureOk>(vec![M::from(
            connection::SecureOk::default(),
        )]),
        entry::<connection::Tune, connection::TuneOk>(vec![M::from(connection::TuneOk::default())]),
        entry::<connection::Open, connection::OpenOk>(vec![M::from(connection::OpenOk)]),
        entry::<connection::Close, connection::CloseOk>(vec![M::from(connection::CloseOk)]),
        entry::<connection::UpdateSecret, connection::UpdateSecretOk>(vec![M::from(
            connection::UpdateSecretOk,
        )]),
        entry::<channel::Open, channel::OpenOk>(vec![M::from(channel::OpenOk)]),
        entry::<channel::Flow, channel::FlowOk>(vec![M::from(channel::FlowOk::default())]),
        entry::<channel::Close, channel::CloseOk>(vec![M::from(channel::CloseOk)]),
        entry::<exchange::Declare, exchange::DeclareOk>(vec![M::from(exchange::DeclareOk)]),
        entry::<exchange::Delete, exchange::DeleteOk>(vec![M::from(exchange::DeleteOk)]),
        entry::<exchange::Bind, exchange::BindOk>(vec![M::from(exchange::BindOk)]),
        entry::<exchange::Unbind, exchange::UnbindOk>(vec![M::from(exchange::UnbindOk)]),
        entry::<queue::Declare, queue::DeclareOk>(vec![M::from(queue::DeclareOk::default())]),
        entry::<queue::Bind, queue::BindOk>(vec![M::from(queue::BindOk)]),
        entry::<queue::Purge, queue::PurgeOk>(vec![M::from(queue::PurgeOk::default())]),
        entry::<queue::Delete, queue::DeleteOk>(vec![M::from(queue::DeleteOk::default())]),
        entry::<queue::Unbind, queue::UnbindOk>(vec![M::from(queue::UnbindOk)]),
        entry::<basic::Qos, basic::QosOk>(vec![M::from(basic::QosOk)]),
        entry::<basic::Consume, basic::ConsumeOk>(vec![M::from(basic::ConsumeOk::default())]),
        entry::<basic::Cancel, basic::CancelOk>(vec![M::from(basic::CancelOk::default())]),
        entry::<basic::Get, basic::GetReply>(vec![
            M::from(basic::GetOk::default()),
            M::from(basic::GetEmpty),
        ]),
        entry::<basic::Recover, basic::RecoverOk>(vec![M::from(basic::RecoverOk)]),
        entry::<confirm::Select, confirm::SelectOk>(vec![M::from(confirm::SelectOk)]),
        entry::<tx::Select, tx::SelectOk>(vec![M::from(tx::SelectOk)]),
        entry::<tx::Commit, tx::CommitOk>(vec![M::from(tx::CommitOk)]),
        entry::<tx::Rollback, tx::RollbackOk>(vec![M::from(tx::RollbackOk)]),
    ]
}

#[test]
fn every_synchronous_request_has_the_reply_the_spec_names() {
    let spec = amqp_codegen::parse(amqp_codegen::AMQP_0_9_1_XML).unwrap();
    let listed = listed();
    let mut requests = BTreeSet::new();
    let mut answers = BTreeSet::new();
    for class in &spec.classes {
        for method in &class.methods {
            let name = format!("{}.{}", class.name, method.name);
            if method.responses.is_empty() {
                continue;
            }
            assert!(
                method.synchronous,
                "{name} has responses but is not synchronous"
            );
            let want: Vec<(u16, u16)> = method
                .responses
                .iter()
                .map(|r| (class.index, class.method(r).unwrap().index))
                .collect();
            let Some(entry) = listed.iter().find(|e| e.name == name) else {
                panic!("{name} is a synchronous request of the spec missing from this list");
            };
            assert_eq!(entry.reply_ids, want, "{name}: reply ids");
            assert!(
                entry.round_trips,
                "{name}: a response does not convert to its reply"
            );
            answers.extend(
                method
                    .responses
                    .iter()
                    .map(|r| format!("{}.{r}", class.name)),
            );
            requests.insert(name);
        }
    }
    let names: BTreeSet<String> = listed.iter().map(|e| e.name.to_owned()).collect();
    assert_eq!(
        names, requests,
        "the list names methods the spec gives no responses"
    );
    assert_eq!(requests.len(), 27);
    // Every other synchronous method is a reply to one of them.
    for class in &spec.classes {
        for method in &class.methods {
            let name = format!("{}.{}", class.name, method.name);
            if method.synchronous && !requests.contains(&name) {
                assert!(
                    answers.contains(&name),
                    "{name} is synchronous but answers nothing"
                );
            }
        }
    }
}

#[test]
fn reply_tables_of_the_method_enum() {
    assert_eq!(Method::name_of(60, 40), Some("basic.publish"));
    assert_eq!(Method::name_of(40, 51), Some("exchange.unbind-ok"));
    assert_eq!(Method::name_of(60, 1), None);
    assert_eq!(Method::from(basic::Publish::default()).reply_ids(), &[]);
    assert_eq!(
        Method::from(basic::Recover::default()).reply_ids(),
        &[(60, 111)]
    );
    assert_eq!(basic::Get::RESPONSES, &["basic.get-ok", "basic.get-empty"]);
    assert_eq!(
        basic::GetReply::try_from(Method::from(basic::Ack::default())),
        Err(Method::from(basic::Ack::default()))
    );
}

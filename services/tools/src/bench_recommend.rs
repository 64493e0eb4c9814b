//! `longview bench recommend`: 10,000 candidates whose vectors are cached, scored over real
//! gRPC by a `longview serve --target recommend` process, against the 50 ms p50 goal.

use crate::ModelArgs;
use crate::bench_batching::{start_server, stop};
use anyhow::Context;
use longview_proto::v1::{self as pb, recommend_client::RecommendClient};
use longview_recommend::score::{self, CandidateFacts, HalfLife, Weights};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// The p50 a Score call of 10,000 cached candidates should stay under.
const GOAL_MS: f64 = 50.0;
const HISTORY: usize = 20;

const ADJECTIVES: [&str; 25] = [
    "quiet", "bold", "gentle", "furious", "clever", "haunting", "sunny", "bitter", "tender",
    "strange", "brisk", "lavish", "humble", "restless", "vivid", "somber", "playful", "stern",
    "curious", "radiant", "gritty", "dreamy", "lonely", "rowdy", "elegant",
];
const FORMS: [&str; 20] = [
    "documentary",
    "cookbook",
    "thriller",
    "podcast",
    "comedy",
    "biography",
    "travel guide",
    "love story",
    "war drama",
    "cartoon",
    "essay",
    "field guide",
    "western",
    "mystery",
    "science show",
    "memoir",
    "musical",
    "satire",
    "fable",
    "interview",
];
const TOPICS: [&str; 20] = [
    "deep-sea volcanoes",
    "a lunar landing",
    "street food in Hanoi",
    "medieval castles",
    "jazz in the twenties",
    "a chess prodigy",
    "arctic foxes",
    "the stock market crash",
    "a village bakery",
    "quantum computers",
    "a mountain rescue",
    "desert caravans",
    "an orbiting telescope",
    "family vineyards",
    "a football final",
    "coral reefs",
    "a lighthouse keeper",
    "ancient Rome",
    "electric cars",
    "a spice market",
];

/// Item `i` of the synthetic catalogue: distinct texts for i < 10,000.
fn item_text(i: usize) -> String {
    let adjective = ADJECTIVES[i % ADJECTIVES.len()];
    let form = FORMS[(i / ADJECTIVES.len()) % FORMS.len()];
    let topic = TOPICS[(i / (ADJECTIVES.len() * FORMS.len())) % TOPICS.len()];
    format!("A {adjective} {form} about {topic} (catalogue {i})")
}

/// One case's calls: latencies in milliseconds, CPU seconds summed.
#[derive(Default)]
struct Measured {
    latencies: Vec<f64>,
    server_cpu: f64,
    client_cpu: f64,
}

impl Measured {
    fn add(&mut self, call: Call) {
        self.latencies.push(call.wall.as_secs_f64() * 1e3);
        self.server_cpu += call.server_cpu;
        self.client_cpu += call.client_cpu;
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort_by(f64::total_cmp);
        let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(at).copied().unwrap_or(f64::NAN)
    }
}

pub async fn run(
    model: &ModelArgs,
    candidates: usize,
    calls: usize,
    out: &Path,
) -> anyhow::Result<()> {
    let store = tempfile::tempdir()?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["serve", "--target", "recommend", "--listen", "127.0.0.1:0"])
        .args(["--log-format", "json", "--log-level", "info"])
        .arg("--recommend-store-dir")
        .arg(store.path())
        .arg("--model-dir")
        .arg(model.model_dir()?);
    let (child, addr) = start_server(command)?;
    let result = measure(&addr, child.id(), candidates, calls).await;
    stop(child);
    let report = result?;
    println!("{report}");
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, report)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Runs every case and returns the markdown report.
async fn measure(
    addr: &str,
    server: u32,
    candidates: usize,
    calls: usize,
) -> anyhow::Result<String> {
    let channel = Channel::from_shared(addr.to_string())?.connect().await?;
    let mut client = RecommendClient::new(channel)
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20);
    let now = 1_750_000_000i64;
    let stored = store_items(&mut client, candidates, now).await?;
    let cases = cases(candidates, now);
    let mut measured: Vec<Measured> = cases.iter().map(|_| Measured::default()).collect();
    let mut reference = Measured::default();
    let dimensions = 384;
    let vectors = reference_vectors(candidates + 1, dimensions);
    let (user, catalogue) = vectors.split_first().context("no reference vectors")?;
    // Cases take turns, call by call, so load from other processes hits them alike.
    for round in 0..calls + 2 {
        for ((_, request), measured) in cases.iter().zip(&mut measured) {
            let call = time_call(&mut client, request, server).await?;
            if round >= 2 {
                measured.add(call);
            }
        }
        let call = time_reference(user, catalogue, now);
        if round >= 2 {
            reference.add(call);
        }
    }
    let mut md = format!(
        "# Recommend benchmark: Score with {candidates} cached candidates\n\n\
         `longview bench recommend` (release build): a `longview serve --target recommend` \
         process on loopback, {candidates} items stored first ({stored}), then {calls} timed Score \
         calls per case (after 2 warm-up rounds; cases take turns call by call), each with a \
         {HISTORY}-item history of stored ids. Every call is checked to have found all vectors \
         cached. The reference row scores {candidates} random {dimensions}-dimension vectors in \
         this process with the service's own functions (components, blend, sort): the floor \
         without gRPC, lookups or encoding of the response. The machine has 2 cores shared with \
         other builds, so wall times include waiting for a core; CPU ms per call (server, client) \
         is what a call costs with the cores to itself.\n\n"
    );
    let _ = writeln!(
        md,
        "| case | p50 ms | p99 ms | goal ms | p50 / goal | p50 / reference | CPU ms/call (server, client) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    let floor = reference.percentile(0.5);
    let rows = cases.iter().map(|(name, _)| *name).zip(&measured);
    for (name, m) in rows.chain([("reference: in-process scoring only", &reference)]) {
        let p50 = m.percentile(0.5);
        let _ = writeln!(
            md,
            "| {name} | {p50:.1} | {:.1} | {GOAL_MS:.0} | {:.2}x | {:.1}x | {:.1}, {:.1} |",
            m.percentile(0.99),
            p50 / GOAL_MS,
            p50 / floor,
            m.server_cpu * 1e3 / calls as f64,
            m.client_cpu * 1e3 / calls as f64,
        );
    }
    let p50 = measured.first().map_or(f64::NAN, |m| m.percentile(0.5));
    let verdict = if p50 <= GOAL_MS { "met" } else { "NOT met" };
    let _ = writeln!(
        md,
        "\nGoal: p50 ≤ {GOAL_MS:.0} ms for {candidates} cached candidates by id: **{p50:.1} ms, {verdict}**."
    );
    Ok(md)
}

/// `count` unit vectors, deterministic, for the in-process reference.
fn reference_vectors(count: usize, dimensions: usize) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..count)
        .map(|_| {
            let v: Vec<f32> = (0..dimensions).map(|_| rng.random::<f32>() - 0.5).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect()
        })
        .collect()
}

/// The service's scoring of every candidate against `user`, without the service.
fn time_reference(user: &[f32], candidates: &[Vec<f32>], now: i64) -> Call {
    let before = cpu_seconds(std::process::id());
    let started = Instant::now();
    let facts: Vec<CandidateFacts<'_>> = candidates
        .iter()
        .enumerate()
        .map(|(i, v)| CandidateFacts {
            vector: v,
            popularity: (i % 997) as u64,
            timestamp: now - (i as i64 % 365) * 86_400,
        })
        .collect();
    let parts = score::components(Some(user), &facts, now, HalfLife::days(7.0));
    let (weights, features) = (Weights::default(), BTreeMap::new());
    let mut scores: Vec<f64> = parts
        .iter()
        .map(|p| score::blend(p, &features, &weights))
        .collect();
    scores.sort_by(|a, b| b.total_cmp(a));
    std::hint::black_box(scores);
    let wall = started.elapsed();
    let client_cpu = cpu_seconds(std::process::id())
        .zip(before)
        .map_or(f64::NAN, |(after, b)| after - b);
    Call {
        wall,
        server_cpu: 0.0,
        client_cpu,
    }
}

/// Stores the catalogue: every vector is encoded here, once.
async fn store_items(
    client: &mut RecommendClient<Channel>,
    count: usize,
    now: i64,
) -> anyhow::Result<String> {
    let items: Vec<pb::Item> = (0..count)
        .map(|i| pb::Item {
            item_id: format!("item-{i}"),
            text: item_text(i),
            popularity: (i % 997) as u64,
            timestamp: now - (i as i64 % 365) * 86_400,
        })
        .collect();
    let started = Instant::now();
    let put = client
        .put_items(pb::PutItemsRequest { items })
        .await?
        .into_inner();
    let seconds = started.elapsed().as_secs_f64();
    let tokens = put.usage.map_or(0, |u| u.tokens_seen);
    Ok(format!(
        "{} items encoded once, cold, in {seconds:.1} s: {:.0} tokens/s",
        put.stored,
        tokens as f64 / seconds
    ))
}

/// The three requests measured: stored ids, the same texts sent inline, and a top-100 cut.
fn cases(candidates: usize, now: i64) -> [(&'static str, pb::ScoreRequest); 3] {
    let history = (0..HISTORY)
        .map(|i| pb::HistoryItem {
            item_id: format!("item-{}", i * 37),
            ..Default::default()
        })
        .collect();
    let user = Some(pb::score_request::User::History(pb::UserHistory {
        items: history,
    }));
    let by_id = |top_k| pb::ScoreRequest {
        user: user.clone(),
        candidates: (0..candidates)
            .map(|i| pb::Candidate {
                item_id: format!("item-{i}"),
                ..Default::default()
            })
            .collect(),
        now,
        top_k,
        ..Default::default()
    };
    let by_text = pb::ScoreRequest {
        candidates: (0..candidates)
            .map(|i| pb::Candidate {
                item_id: format!("text-{i}"),
                text: item_text(i),
                ..Default::default()
            })
            .collect(),
        ..by_id(0)
    };
    [
        ("stored ids, all returned", by_id(0)),
        ("texts (cached by text), all returned", by_text),
        ("stored ids, top 100 returned", by_id(100)),
    ]
}

/// One call: wall time, and CPU seconds spent by the server and by this process.
struct Call {
    wall: Duration,
    server_cpu: f64,
    client_cpu: f64,
}

/// One call, checking that every vector was cached.
async fn time_call(
    client: &mut RecommendClient<Channel>,
    request: &pb::ScoreRequest,
    server: u32,
) -> anyhow::Result<Call> {
    let request = request.clone();
    let before = (cpu_seconds(server), cpu_seconds(std::process::id()));
    let started = Instant::now();
    let response = client.score(request).await?.into_inner();
    let wall = started.elapsed();
    let spent = |before: Option<f64>, pid| {
        cpu_seconds(pid)
            .zip(before)
            .map_or(f64::NAN, |(after, b)| after - b)
    };
    let misses = response.cache.map_or(0, |c| c.misses);
    anyhow::ensure!(misses == 0, "{misses} vectors were not cached");
    Ok(Call {
        wall,
        server_cpu: spent(before.0, server),
        client_cpu: spent(before.1, std::process::id()),
    })
}

/// User and system CPU seconds a process has used, from /proc (Linux; `None` elsewhere).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which sits in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ, which Linux fixes at 100.
    Some(ticks as f64 / 100.0)
}

//! Classify over real gRPC with the real model.

#![allow(clippy::unwrap_used)]

mod common;

use common::{channel, config, start};
use longview_proto::v1::{self as pb, classify_client::ClassifyClient};
use tonic::Code;

const SPORTS: &str = "The home side came from two goals down to win 3–2 in extra time on Sunday. \
The striker scored twice in the final ten minutes, the goalkeeper saved a penalty, and the coach \
praised his players’ fitness after a bruising match. Fans stayed in the stadium long after the final \
whistle to celebrate a place in the cup final, the club’s first in eleven seasons. The captain said \
the team would rest before the league game on Wednesday. ⚽";

const COOKING: &str = "For the sauce, soften two chopped onions in butter over a low heat, add \
garlic, crème fraîche and a handful of fresh thyme, then simmer gently until it thickens. Season \
with salt and pepper, stir in grated cheese, and pour it over roasted vegetables. Bake for twenty \
minutes until golden, and serve the dish warm with crusty bread. 🍲";

const MARKETS: &str = "Shares fell sharply as bond yields climbed to a four-month high; the index \
of large companies lost 1.4%, led by banks and property developers. Investors trimmed bets on interest \
rate cuts after strong wage data, the dollar strengthened and gold slipped. Analysts at a fund \
manager in Zürich said earnings at regional lenders were under pressure from rising deposit costs.";

fn labels(names: &[&str]) -> Option<pb::classify_options::Labels> {
    let labels = names
        .iter()
        .map(|n| pb::Label {
            name: n.to_string(),
            description: String::new(),
        })
        .collect();
    Some(pb::classify_options::Labels::ZeroShot(pb::ZeroShotLabels {
        labels,
    }))
}

fn options(names: &[&str]) -> pb::ClassifyOptions {
    pb::ClassifyOptions {
        labels: labels(names),
        windows: Some(pb::WindowOptions {
            size: 64,
            overlap: 8,
        }),
        ..Default::default()
    }
}

/// Characters `start..end` of `text`, counted in code points.
fn chars(text: &str, start: u64, end: u64) -> String {
    text.chars()
        .skip(start as usize)
        .take((end - start) as usize)
        .collect()
}

#[tokio::test]
async fn evidence_points_at_the_winning_paragraph() {
    let server = start(config()).await;
    let mut client = ClassifyClient::new(channel(&server).await);
    let names = ["sports", "cooking", "financial markets"];
    for (winner, paragraph) in [
        ("sports", SPORTS),
        ("cooking", COOKING),
        ("financial markets", MARKETS),
    ] {
        // The winning topic gets three paragraphs' worth of text in the middle; the others
        // one paragraph each, before and after it.
        let others: Vec<&str> = [SPORTS, COOKING, MARKETS]
            .into_iter()
            .filter(|p| *p != paragraph)
            .collect();
        let block = [paragraph; 3].join("\n\n");
        let text = format!("{}\n\n{block}\n\n{}", others[0], others[1]);
        let block_bytes = text.find(&block).unwrap()..text.find(&block).unwrap() + block.len();
        let request = pb::ClassifyRequest {
            text: text.clone(),
            options: Some(options(&names)),
        };
        let response = client.classify(request).await.unwrap().into_inner();

        assert_eq!(
            response.predicted,
            vec![winner.to_string()],
            "scores {:?}",
            response.scores
        );
        // The strongest evidence is mostly the winner's text (fixed-size windows can cross
        // a paragraph break).
        let best = response.evidence[0].span.unwrap();
        let best = best.byte_start as usize..best.byte_end as usize;
        let inside = best
            .end
            .min(block_bytes.end)
            .saturating_sub(best.start.max(block_bytes.start));
        assert!(inside * 4 >= best.len() * 3, "{winner}: {:?}", &text[best]);
        for evidence in &response.evidence {
            let span = evidence.span.unwrap();
            let excerpt = chars(&text, span.start, span.end);
            let bytes = span.byte_start as usize..span.byte_end as usize;
            assert_eq!(
                excerpt,
                &text[bytes.clone()],
                "code-point and byte spans agree"
            );
            assert_eq!(evidence.label, winner);
            // Windows may straddle a paragraph break, but none may lie wholly elsewhere.
            assert!(
                bytes.end > block_bytes.start && bytes.start < block_bytes.end,
                "{excerpt:?}"
            );
        }
        let usage = response.usage.unwrap();
        assert_eq!((usage.tokens_dropped, usage.truncated), (0, false));
        assert_eq!(usage.tokens_seen, usage.tokens_total);
        assert!(response.window_count > 5);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn news_article_is_about_markets() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/markets-article.txt"
    ))
    .unwrap();
    let server = start(config()).await;
    let mut client = ClassifyClient::new(channel(&server).await);
    let mut options = options(&["markets", "sports", "politics"]);
    options.windows = None;
    let response = client
        .classify(pb::ClassifyRequest {
            text,
            options: Some(options),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.predicted, vec!["markets".to_string()]);
    assert!(response.scores[0].score > 0.6, "{:?}", response.scores);
    let model = response.model.unwrap();
    assert_eq!(model.name, "sentence-transformers/all-MiniLM-L6-v2");
    assert!(!model.version.is_empty());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn streamed_document_matches_unary() {
    let text = format!("{SPORTS}\n\n{MARKETS}\n\n{COOKING}").repeat(5);
    let server = start(config()).await;
    let mut client = ClassifyClient::new(channel(&server).await);
    let names = ["sports", "cooking", "financial markets"];
    let unary = client
        .classify(pb::ClassifyRequest {
            text: text.clone(),
            options: Some(options(&names)),
        })
        .await;
    let unary = unary.unwrap().into_inner();

    let cut = text.char_indices().nth(text.chars().count() / 3).unwrap().0;
    let pieces = vec![
        pb::ClassifyStreamRequest {
            options: Some(options(&names)),
            text_piece: text[..cut].to_string(),
        },
        pb::ClassifyStreamRequest {
            options: None,
            text_piece: text[cut..].to_string(),
        },
    ];
    let streamed = client
        .classify_stream(tokio_stream::iter(pieces))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(streamed.predicted, unary.predicted);
    assert_eq!(streamed.window_count, unary.window_count);
    for (a, b) in streamed.scores.iter().zip(&unary.scores) {
        assert_eq!(a.label, b.label);
        assert!((a.score - b.score).abs() < 1e-4);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_requests_name_the_problem() {
    let mut config = config();
    config.classify.max_document_tokens = 200;
    let server = start(config).await;
    let mut client = ClassifyClient::new(channel(&server).await);
    let request = |text: &str, options: pb::ClassifyOptions| pb::ClassifyRequest {
        text: text.into(),
        options: Some(options),
    };

    let cases = [
        (
            request("\u{200B} \u{FEFF}", options(&["a", "b"])),
            Code::InvalidArgument,
            "empty after normalisation",
        ),
        (
            request("text", options(&["only"])),
            Code::InvalidArgument,
            "at least 2 labels",
        ),
        (
            request(&MARKETS.repeat(10), options(&["a", "b"])),
            Code::InvalidArgument,
            "over the limit of 200 tokens",
        ),
        (
            request(
                "text",
                pb::ClassifyOptions {
                    windows: Some(pb::WindowOptions {
                        size: 32,
                        overlap: 32,
                    }),
                    ..options(&["a", "b"])
                },
            ),
            Code::InvalidArgument,
            "overlap 32",
        ),
        (
            request(
                "text",
                pb::ClassifyOptions {
                    windows: Some(pb::WindowOptions {
                        size: 4096,
                        overlap: 0,
                    }),
                    ..options(&["a", "b"])
                },
            ),
            Code::InvalidArgument,
            "exceeds the model's 512 positions",
        ),
        (
            request(
                "text",
                pb::ClassifyOptions {
                    labels: Some(pb::classify_options::Labels::LabelSet("topics".into())),
                    ..Default::default()
                },
            ),
            Code::NotFound,
            "label set \"topics\" not found",
        ),
    ];
    for (request, code, needle) in cases {
        let status = client.classify(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{}", status.message());
        assert!(
            status.message().contains(needle),
            "{:?} lacks {needle:?}",
            status.message()
        );
    }
    let fine = client
        .classify(request(
            "The striker scored twice.",
            options(&["sports", "cooking"]),
        ))
        .await
        .unwrap();
    assert_eq!(fine.into_inner().predicted, vec!["sports".to_string()]);
    server.shutdown().await.unwrap();
}

use super::*;
use crate::gate::GateError;
use crate::record::StoredChunk;
use longview_core::Span;

const DIMENSIONS: usize = 4;

fn chunk(document: &str, index: u32, text: &str, vector: Vec<f32>) -> StoredChunk {
    StoredChunk {
        record: ChunkRecord {
            document_id: document.into(),
            index,
            text: text.into(),
            span: Span {
                start: 0,
                end: text.chars().count(),
                byte_start: 0,
                byte_end: text.len(),
            },
            metadata: [("lang".to_string(), "en".to_string())].into(),
        },
        vector,
    }
}

fn document(id: &str, vectors: &[[f32; 4]]) -> DocumentChunks {
    DocumentChunks {
        document_id: id.into(),
        chunks: vectors
            .iter()
            .enumerate()
            .map(|(i, v)| chunk(id, i as u32, &format!("{id} chunk {i}"), v.to_vec()))
            .collect(),
    }
}

fn no_filter() -> MetadataFilter {
    MetadataFilter::default()
}

#[tokio::test]
async fn nan_and_zero_vectors_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), DIMENSIONS).unwrap();
    let tenant = Tenant::default();
    let bad = [[1.0, 0.0, 0.0, 0.0], [0.5, f32::NAN, 0.0, 0.0]];
    let err = store
        .replace(&tenant, vec![document("a", &bad)])
        .await
        .unwrap_err();
    match err {
        StoreError::Refused {
            document_id,
            index,
            problem,
        } => {
            assert_eq!((document_id.as_str(), index), ("a", 1));
            assert!(matches!(problem, GateError::NotFinite { component: 1, .. }));
        }
        other => panic!("expected a refusal, got {other}"),
    }
    let zero = document("b", &[[0.0; 4]]);
    let err = store.replace(&tenant, vec![zero]).await.unwrap_err();
    assert!(err.to_string().contains("vector has zero norm"), "{err}");
    let short = DocumentChunks {
        document_id: "c".into(),
        chunks: vec![chunk("c", 0, "c", vec![1.0; 3])],
    };
    assert!(store.replace(&tenant, vec![short]).await.is_err());
    assert!(store.is_empty(), "a refused batch stores nothing");
    assert_eq!(store.count(&tenant, "a").await.unwrap(), 0);
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), DIMENSIONS).unwrap();
    let (acme, globex) = (Tenant::new("acme"), Tenant::new("globex"));
    let vectors = [[1.0, 0.0, 0.0, 0.0], [0.9, 0.1, 0.0, 0.0]];
    store
        .replace(&acme, vec![document("shared-id", &vectors)])
        .await
        .unwrap();
    store
        .replace(&globex, vec![document("shared-id", &vectors[..1])])
        .await
        .unwrap();

    let query = vec![1.0, 0.0, 0.0, 0.0];
    let hits = store
        .search(&acme, query.clone(), 10, &no_filter())
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    let globex_hits = store
        .search(&globex, query.clone(), 10, &no_filter())
        .await
        .unwrap();
    assert_eq!(globex_hits.len(), 1);
    let ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
    assert!(store.fetch(&globex, ids.clone()).await.unwrap().is_empty());
    assert_eq!(store.fetch(&acme, ids).await.unwrap().len(), 2);
    let nobody = store
        .search(&Tenant::new("initech"), query, 10, &no_filter())
        .await
        .unwrap();
    assert!(nobody.is_empty());

    assert_eq!(
        store
            .delete(&globex, vec!["shared-id".into()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.count(&acme, "shared-id").await.unwrap(),
        2,
        "acme's copy stays"
    );
}

#[tokio::test]
async fn replace_leaves_no_stale_chunk_and_filters_apply() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), DIMENSIONS).unwrap();
    let tenant = Tenant::default();
    let three = [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
    ];
    store
        .replace(&tenant, vec![document("d", &three)])
        .await
        .unwrap();
    let removed = store
        .replace(&tenant, vec![document("d", &three[..1])])
        .await
        .unwrap();
    assert_eq!(removed, 3);
    assert_eq!(store.count(&tenant, "d").await.unwrap(), 1);
    let hits = store
        .search(&tenant, vec![0.0, 0.0, 1.0, 0.0], 10, &no_filter())
        .await
        .unwrap();
    assert_eq!(hits.len(), 1, "only the new chunk remains: {hits:?}");

    let french = MetadataFilter([("lang".to_string(), "fr".to_string())].into());
    assert!(
        store
            .search(&tenant, vec![1.0, 0.0, 0.0, 0.0], 10, &french)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn survives_reopen_and_rebuilds_a_lost_graph() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = Tenant::default();
    let vectors = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]];
    {
        let store = EmbeddedStore::open(dir.path(), DIMENSIONS).unwrap();
        store
            .replace(&tenant, vec![document("kept", &vectors)])
            .await
            .unwrap();
        store
            .replace(&tenant, vec![document("gone", &vectors)])
            .await
            .unwrap();
        store.delete(&tenant, vec!["gone".into()]).await.unwrap();
    }
    let query = vec![0.0, 1.0, 0.0, 0.0];
    let reopened = EmbeddedStore::open(dir.path(), DIMENSIONS).unwrap();
    let hits = reopened
        .search(&tenant, query.clone(), 5, &no_filter())
        .await
        .unwrap();
    assert_eq!(hits[0].record.document_id, "kept");
    assert_eq!(hits[0].record.index, 1);
    assert_eq!(hits.len(), 2, "the deleted document stays deleted");
    drop(reopened);

    std::fs::remove_file(dir.path().join(GRAPH_STATE_FILE)).unwrap();
    let rebuilt = EmbeddedStore::open(dir.path(), DIMENSIONS).unwrap();
    let again = rebuilt
        .search(&tenant, query, 5, &no_filter())
        .await
        .unwrap();
    assert_eq!(again, hits);

    drop(rebuilt);
    let err = EmbeddedStore::open(dir.path(), 8)
        .err()
        .expect("dimension mismatch refused");
    assert!(
        err.to_string()
            .contains("holds 4-dimensional vectors but the model makes 8")
    );
}

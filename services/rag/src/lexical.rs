//! The BM25 side of retrieval: a tantivy index of chunk texts, on disk beside the vectors.
//!
//! Each chunk is one tantivy document holding its point id, tenant, an owner key
//! (tenant and document id, what upserts delete by) and its metadata as `key=value` terms,
//! so tenant and metadata filters are exact term matches inside the same query.

use crate::record::{ChunkRecord, MetadataFilter};
use longview_core::Tenant;
use std::path::Path;
use std::sync::Mutex;
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use thiserror::Error;

/// Memory the single index writer may buffer before it flushes a segment.
const WRITER_MEMORY_BYTES: usize = 64 << 20;
/// Separates the parts of composite terms; never appears in tenant names or ids we accept.
const SEPARATOR: char = '\u{1f}';

#[derive(Debug, Error)]
pub enum LexicalError {
    #[error("full-text index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("full-text index directory: {0}")]
    Directory(String),
}

struct Fields {
    point: Field,
    tenant: Field,
    owner: Field,
    meta: Field,
    text: Field,
}

/// The BM25 index. Writes are serialised through one writer, opened on the first write
/// (the writer locks the directory; a server that only reads never takes the lock);
/// reads never wait for writes.
pub struct LexicalIndex {
    index: Index,
    fields: Fields,
    writer: Mutex<Option<IndexWriter>>,
    reader: IndexReader,
}

impl LexicalIndex {
    /// Opens the index in `dir`, creating it when empty.
    pub fn open(dir: &Path) -> Result<Self, LexicalError> {
        std::fs::create_dir_all(dir).map_err(|e| LexicalError::Directory(e.to_string()))?;
        let directory =
            MmapDirectory::open(dir).map_err(|e| LexicalError::Directory(e.to_string()))?;
        let index = Index::open_or_create(directory, schema())?;
        Self::with_index(index)
    }

    /// An index in memory only (benchmarks).
    pub fn in_memory() -> Result<Self, LexicalError> {
        Self::with_index(Index::create_in_ram(schema()))
    }

    fn with_index(index: Index) -> Result<Self, LexicalError> {
        let schema = index.schema();
        let field = |name: &str| schema.get_field(name);
        let fields = Fields {
            point: field("point")?,
            tenant: field("tenant")?,
            owner: field("owner")?,
            meta: field("meta")?,
            text: field("text")?,
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Self {
            index,
            fields,
            writer: Mutex::new(None),
            reader,
        })
    }

    /// Replaces every chunk of the given documents with `chunks`, and commits.
    pub fn replace(
        &self,
        tenant: &Tenant,
        document_ids: &[String],
        chunks: &[(u64, &ChunkRecord)],
    ) -> Result<(), LexicalError> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let writer = match guard.as_mut() {
            Some(writer) => writer,
            None => guard.insert(self.index.writer(WRITER_MEMORY_BYTES)?),
        };
        for id in document_ids {
            writer.delete_term(self.owner_term(tenant, id));
        }
        for (point, record) in chunks {
            writer.add_document(self.document(tenant, *point, record))?;
        }
        writer.commit()?;
        drop(guard);
        self.reader.reload()?;
        Ok(())
    }

    /// Removes every chunk of the given documents, and commits.
    pub fn delete(&self, tenant: &Tenant, document_ids: &[String]) -> Result<(), LexicalError> {
        self.replace(tenant, document_ids, &[])
    }

    /// Point ids of the `limit` best BM25 matches for `query` within the tenant and filter,
    /// best first. A query with no searchable words finds nothing.
    pub fn search(
        &self,
        tenant: &Tenant,
        query: &str,
        limit: usize,
        filter: &MetadataFilter,
    ) -> Result<Vec<(u64, f32)>, LexicalError> {
        // Any word may match (OR), as BM25 retrieval expects; scores rank the rest.
        let (text_query, _) = QueryParser::for_index(&self.index, vec![self.fields.text])
            .parse_query_lenient(&escape(query));
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text_query)];
        clauses.push((
            Occur::Must,
            exact(Term::from_field_text(self.fields.tenant, tenant.as_str())),
        ));
        for (key, value) in &filter.0 {
            let term = Term::from_field_text(self.fields.meta, &meta_term(key, value));
            clauses.push((Occur::Must, exact(term)));
        }
        let searcher = self.reader.searcher();
        let top = searcher.search(&BooleanQuery::new(clauses), &TopDocs::with_limit(limit))?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let document: TantivyDocument = searcher.doc(address)?;
            if let Some(point) = document
                .get_first(self.fields.point)
                .and_then(|v| v.as_u64())
            {
                hits.push((point, score));
            }
        }
        Ok(hits)
    }

    fn document(&self, tenant: &Tenant, point: u64, record: &ChunkRecord) -> TantivyDocument {
        let mut document = TantivyDocument::default();
        document.add_u64(self.fields.point, point);
        document.add_text(self.fields.tenant, tenant.as_str());
        document.add_text(self.fields.owner, owner(tenant, &record.document_id));
        for (key, value) in &record.metadata {
            document.add_text(self.fields.meta, meta_term(key, value));
        }
        document.add_text(self.fields.text, &record.text);
        document
    }

    fn owner_term(&self, tenant: &Tenant, document_id: &str) -> Term {
        Term::from_field_text(self.fields.owner, &owner(tenant, document_id))
    }
}

fn schema() -> Schema {
    let mut builder = Schema::builder();
    builder.add_u64_field("point", NumericOptions::default().set_stored());
    builder.add_text_field("tenant", STRING);
    builder.add_text_field("owner", STRING);
    builder.add_text_field("meta", STRING);
    // English stemming, positions for phrase queries a user might type.
    let indexing = TextFieldIndexing::default()
        .set_tokenizer("en_stem")
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    builder.add_text_field(
        "text",
        TextOptions::default().set_indexing_options(indexing),
    );
    builder.build()
}

/// A filter clause that must match but adds nothing to the BM25 score.
fn exact(term: Term) -> Box<dyn Query> {
    let query = TermQuery::new(term, IndexRecordOption::Basic);
    Box::new(ConstScoreQuery::new(Box::new(query), 0.0))
}

fn owner(tenant: &Tenant, document_id: &str) -> String {
    format!("{tenant}{SEPARATOR}{document_id}")
}

fn meta_term(key: &str, value: &str) -> String {
    format!("{key}{SEPARATOR}{value}")
}

/// Questions are plain text, not query syntax: every character the parser treats as an
/// operator becomes a space, so "C++ (2024)?" searches for its words.
fn escape(query: &str) -> String {
    query
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Metadata;
    use longview_core::Span;

    fn record(document: &str, text: &str, lang: &str) -> ChunkRecord {
        ChunkRecord {
            document_id: document.into(),
            index: 0,
            text: text.into(),
            span: Span::default(),
            metadata: Metadata::from([("lang".to_string(), lang.to_string())]),
        }
    }

    fn filter(pairs: &[(&str, &str)]) -> MetadataFilter {
        MetadataFilter(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn bm25_stays_within_tenant_and_filter() {
        let dir = tempfile::tempdir().unwrap();
        let index = LexicalIndex::open(dir.path()).unwrap();
        let (acme, globex) = (Tenant::new("acme"), Tenant::new("globex"));
        let river = record("r", "The river floods the valley every spring.", "en");
        let rivers = record("f", "Les rivières débordent: the river floods.", "fr");
        index
            .replace(
                &acme,
                &["r".into(), "f".into()],
                &[(1, &river), (2, &rivers)],
            )
            .unwrap();
        index
            .replace(&globex, &["r".into()], &[(3, &river)])
            .unwrap();

        let found = index
            .search(&acme, "river floods?", 10, &MetadataFilter::default())
            .unwrap();
        let ids: Vec<u64> = found.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), 2);
        assert!(!ids.contains(&3), "another tenant's chunk leaked: {ids:?}");
        let english = index
            .search(&acme, "river", 10, &filter(&[("lang", "en")]))
            .unwrap();
        assert_eq!(english.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1]);
        assert!(
            index
                .search(&acme, "((", 10, &MetadataFilter::default())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn replace_and_delete_leave_nothing_stale_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = Tenant::default();
        {
            let index = LexicalIndex::open(dir.path()).unwrap();
            let old = record("d", "volcano eruption ash", "en");
            index.replace(&tenant, &["d".into()], &[(1, &old)]).unwrap();
            let new = record("d", "harbour cranes", "en");
            index.replace(&tenant, &["d".into()], &[(2, &new)]).unwrap();
            assert!(
                index
                    .search(&tenant, "volcano", 5, &MetadataFilter::default())
                    .unwrap()
                    .is_empty()
            );
        }
        let reopened = LexicalIndex::open(dir.path()).unwrap();
        let found = reopened
            .search(&tenant, "harbour", 5, &MetadataFilter::default())
            .unwrap();
        assert_eq!(found.iter().map(|h| h.0).collect::<Vec<_>>(), vec![2]);
        reopened.delete(&tenant, &["d".into()]).unwrap();
        assert!(
            reopened
                .search(&tenant, "harbour", 5, &MetadataFilter::default())
                .unwrap()
                .is_empty()
        );
    }
}

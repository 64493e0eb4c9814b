//! The durable side of the embedded store: every chunk's tenant, record and vector in a
//! tantivy index, replaced per (tenant, document) and committed on every write.

use crate::record::ChunkRecord;
use crate::store::StoreError;
use longview_core::Tenant;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tantivy::collector::DocSetCollector;
use tantivy::directory::MmapDirectory;
use tantivy::query::AllQuery;
use tantivy::schema::{BytesOptions, Field, NumericOptions, STORED, STRING, Schema, Value};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

const WRITER_MEMORY_BYTES: usize = 64 << 20;
const SEPARATOR: char = '\u{1f}';

/// A stored chunk as memory keeps it.
#[derive(Debug)]
pub struct Entry {
    pub tenant: Tenant,
    pub record: ChunkRecord,
}

struct Fields {
    point: Field,
    tenant: Field,
    owner: Field,
    record: Field,
    vector: Field,
}

pub struct ChunkLog {
    index: Index,
    fields: Fields,
    /// Opened on the first write: the writer locks the directory.
    writer: Mutex<Option<IndexWriter>>,
    reader: IndexReader,
}

impl ChunkLog {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| failed(format!("{}: {e}", dir.display())))?;
        let directory = MmapDirectory::open(dir).map_err(failed)?;
        let index = Index::open_or_create(directory, schema()).map_err(failed)?;
        let schema = index.schema();
        let field = |name: &str| schema.get_field(name).map_err(failed);
        let fields = Fields {
            point: field("point")?,
            tenant: field("tenant")?,
            owner: field("owner")?,
            record: field("record")?,
            vector: field("vector")?,
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(failed)?;
        Ok(Self {
            index,
            fields,
            writer: Mutex::new(None),
            reader,
        })
    }

    /// The last commit's stamp; the graph saved with the same stamp is current.
    pub fn opstamp(&self) -> Result<u64, StoreError> {
        Ok(self.index.load_metas().map_err(failed)?.opstamp)
    }

    /// Deletes the documents' chunks, adds `chunks`, commits; returns the commit's stamp.
    pub fn write(
        &self,
        tenant: &Tenant,
        document_ids: &[String],
        chunks: &[(u64, ChunkRecord, Vec<f32>)],
    ) -> Result<u64, StoreError> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let writer = match guard.as_mut() {
            Some(writer) => writer,
            None => guard.insert(self.index.writer(WRITER_MEMORY_BYTES).map_err(failed)?),
        };
        for id in document_ids {
            writer.delete_term(Term::from_field_text(self.fields.owner, &owner(tenant, id)));
        }
        for (point, record, vector) in chunks {
            let mut document = TantivyDocument::default();
            document.add_u64(self.fields.point, *point);
            document.add_text(self.fields.tenant, tenant.as_str());
            document.add_text(self.fields.owner, owner(tenant, &record.document_id));
            let json = serde_json::to_string(record).map_err(failed)?;
            document.add_text(self.fields.record, json);
            document.add_bytes(self.fields.vector, &vector_bytes(vector));
            writer.add_document(document).map_err(failed)?;
        }
        let opstamp = writer.commit().map_err(failed)?;
        drop(guard);
        self.reader.reload().map_err(failed)?;
        Ok(opstamp)
    }

    /// Every stored chunk's tenant and record, by point id.
    pub fn entries(&self) -> Result<HashMap<u64, Arc<Entry>>, StoreError> {
        let mut entries = HashMap::new();
        self.scan(|document| {
            let point = document
                .get_first(self.fields.point)
                .and_then(|v| v.as_u64());
            let tenant = document
                .get_first(self.fields.tenant)
                .and_then(|v| v.as_str());
            let record = document
                .get_first(self.fields.record)
                .and_then(|v| v.as_str());
            let (Some(point), Some(tenant), Some(record)) = (point, tenant, record) else {
                return Err(failed("a stored chunk lacks its point, tenant or record"));
            };
            let record: ChunkRecord = serde_json::from_str(record).map_err(failed)?;
            let entry = Entry {
                tenant: Tenant::new(tenant),
                record,
            };
            entries.insert(point, Arc::new(entry));
            Ok(())
        })?;
        Ok(entries)
    }

    /// Calls `add` with every stored vector; returns how many.
    pub fn for_each_vector(
        &self,
        mut add: impl FnMut(u64, &[f32]) -> Result<(), StoreError>,
    ) -> Result<usize, StoreError> {
        let mut count = 0;
        self.scan(|document| {
            let point = document
                .get_first(self.fields.point)
                .and_then(|v| v.as_u64());
            let bytes = document
                .get_first(self.fields.vector)
                .and_then(|v| v.as_bytes());
            let (Some(point), Some(bytes)) = (point, bytes) else {
                return Err(failed("a stored chunk lacks its point or vector"));
            };
            add(point, &vector_of(bytes))?;
            count += 1;
            Ok(())
        })?;
        Ok(count)
    }

    /// The vector size of the first stored chunk, if any.
    pub fn stored_dimensions(&self) -> Result<Option<usize>, StoreError> {
        let searcher = self.reader.searcher();
        let found = searcher
            .search(&AllQuery, &DocSetCollector)
            .map_err(failed)?;
        let Some(address) = found.into_iter().next() else {
            return Ok(None);
        };
        let document: TantivyDocument = searcher.doc(address).map_err(failed)?;
        let bytes = document
            .get_first(self.fields.vector)
            .and_then(|v| v.as_bytes());
        Ok(bytes.map(|b| b.len() / 4))
    }

    fn scan(
        &self,
        mut visit: impl FnMut(&TantivyDocument) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let searcher = self.reader.searcher();
        for address in searcher
            .search(&AllQuery, &DocSetCollector)
            .map_err(failed)?
        {
            let document: TantivyDocument = searcher.doc(address).map_err(failed)?;
            visit(&document)?;
        }
        Ok(())
    }
}

fn schema() -> Schema {
    let mut builder = Schema::builder();
    builder.add_u64_field(
        "point",
        NumericOptions::default().set_stored().set_indexed(),
    );
    builder.add_text_field("tenant", STRING | STORED);
    builder.add_text_field("owner", STRING);
    builder.add_text_field("record", STORED);
    builder.add_bytes_field("vector", BytesOptions::default().set_stored());
    builder.build()
}

fn owner(tenant: &Tenant, document_id: &str) -> String {
    format!("{tenant}{SEPARATOR}{document_id}")
}

fn vector_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn vector_of(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn failed(err: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("embedded store: {err}"))
}

//! Flat columns, declared once per table: a name, an Arrow kind, and a getter from an event's
//! `data` (or any row source) to a cell. The typed tables and the verdicts snapshot are built
//! with these; the `events` table has its own hand-written builders (it is the hot path).

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder, TimestampNanosecondBuilder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use serde_json::Value;

/// Timestamps are UTC nanoseconds.
pub const TZ: &str = "UTC";

/// The Arrow type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    U64,
    I64,
    F64,
    Bool,
    Str,
    /// Timestamp, nanoseconds, UTC.
    Ts,
    /// List of strings.
    Strs,
}

impl Kind {
    pub fn data_type(self) -> DataType {
        match self {
            Kind::U64 => DataType::UInt64,
            Kind::I64 => DataType::Int64,
            Kind::F64 => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Str => DataType::Utf8,
            Kind::Ts => timestamp_type(),
            Kind::Strs => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
        }
    }
}

pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some(TZ.into()))
}

/// One value. A cell whose kind does not fit its column is written as null.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Str(&'a str),
    Owned(String),
    Ts(i64),
    Strs(Vec<&'a str>),
    OwnedStrs(Vec<String>),
}

/// What a typed-table getter sees: one record's seq, times and `data`.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub seq: u64,
    /// The producer's `time`, Unix ns (None if outside the i64 range).
    pub time_ns: Option<i64>,
    pub ty: &'a str,
    pub data: &'a Value,
}

impl<'a> Row<'a> {
    pub fn str(&self, key: &str) -> Cell<'a> {
        self.data.get(key).and_then(Value::as_str).map_or(Cell::Null, Cell::Str)
    }
    /// An integer field for a UInt64 column (see [`integer`]).
    pub fn u64(&self, key: &str) -> Cell<'a> {
        self.data.get(key).and_then(integer).and_then(|i| u64::try_from(i).ok()).map_or(Cell::Null, Cell::U64)
    }
    /// An integer field for an Int64 column (see [`integer`]).
    pub fn i64(&self, key: &str) -> Cell<'a> {
        self.data.get(key).and_then(integer).and_then(|i| i64::try_from(i).ok()).map_or(Cell::Null, Cell::I64)
    }
    /// A PCI id field in its one canonical form (`0000:ca:00.0`), whatever form the event holds,
    /// so that tables join on (host, pci); text that is not a PCI id is kept as it is.
    pub fn pci(&self, key: &str) -> Cell<'a> {
        match self.data.get(key).and_then(Value::as_str) {
            Some(text) => assay_events::pci::canonical(text).map_or(Cell::Str(text), Cell::Owned),
            None => Cell::Null,
        }
    }
    pub fn f64(&self, key: &str) -> Cell<'a> {
        self.data.get(key).and_then(Value::as_f64).map_or(Cell::Null, Cell::F64)
    }
    pub fn bool(&self, key: &str) -> Cell<'a> {
        self.data.get(key).and_then(Value::as_bool).map_or(Cell::Null, Cell::Bool)
    }
    /// The strings of an array field (null when absent).
    pub fn strs(&self, key: &str) -> Cell<'a> {
        match self.data.get(key).and_then(Value::as_array) {
            Some(a) => Cell::Strs(a.iter().filter_map(Value::as_str).collect()),
            None => Cell::Null,
        }
    }
    /// A nested value as compact JSON with sorted keys (null when absent).
    pub fn json(&self, key: &str) -> Cell<'a> {
        match self.data.get(key) {
            None | Some(Value::Null) => Cell::Null,
            Some(v) => Cell::Owned(assay_projections::canon::canonical_string(v)),
        }
    }
    /// The part of the type after its first segment: `run.started` → `started`,
    /// `kernel.launch.faulted` → `launch.faulted`.
    pub fn event(&self) -> Cell<'a> {
        Cell::Str(self.ty.split_once('.').map_or(self.ty, |(_, rest)| rest))
    }
}

/// The value of an integer field, for a column to take if it fits (a cell that does not fit
/// its column is null).
///
/// The ledger accepts only JSON integers within each field's column range in integer fields
/// (`crate::schema`), so every event it accepts fits. A ledger written before that rule may
/// hold an integral number written as a float (`100.0`, `1e2`): it is taken at its value, 100.
/// A number no 64-bit column can hold (`1e30`, `18446744073709551616`, `1.5`) is None, and the
/// cell null; the event's payload in `events/` keeps the number as it was written. Either way
/// the export never fails on an event the ledger holds.
pub fn integer(v: &Value) -> Option<i128> {
    if let Some(u) = v.as_u64() {
        return Some(u.into());
    }
    if let Some(i) = v.as_i64() {
        return Some(i.into());
    }
    // 2^64 and -2^63 are exact in f64; every integral f64 in between converts exactly.
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    const MINUS_TWO_63: f64 = -9_223_372_036_854_775_808.0;
    let f = v.as_f64()?;
    (f.fract() == 0.0 && (MINUS_TWO_63..TWO_64).contains(&f)).then_some(f as i128)
}

/// A column of a table.
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub get: for<'a> fn(&Row<'a>) -> Cell<'a>,
}

/// An Arrow builder of one kind.
pub enum ColBuilder {
    U64(UInt64Builder),
    I64(Int64Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
    Ts(TimestampNanosecondBuilder),
    Strs(ListBuilder<StringBuilder>),
}

impl ColBuilder {
    pub fn new(kind: Kind, rows: usize) -> ColBuilder {
        match kind {
            Kind::U64 => ColBuilder::U64(UInt64Builder::with_capacity(rows)),
            Kind::I64 => ColBuilder::I64(Int64Builder::with_capacity(rows)),
            Kind::F64 => ColBuilder::F64(Float64Builder::with_capacity(rows)),
            Kind::Bool => ColBuilder::Bool(BooleanBuilder::with_capacity(rows)),
            Kind::Str => ColBuilder::Str(StringBuilder::with_capacity(rows, rows * 16)),
            Kind::Ts => ColBuilder::Ts(TimestampNanosecondBuilder::with_capacity(rows).with_timezone(TZ)),
            Kind::Strs => ColBuilder::Strs(
                ListBuilder::with_capacity(StringBuilder::new(), rows)
                    .with_field(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            ),
        }
    }

    pub fn push(&mut self, cell: Cell<'_>) {
        match (self, cell) {
            (ColBuilder::U64(b), Cell::U64(v)) => b.append_value(v),
            (ColBuilder::U64(b), _) => b.append_null(),
            (ColBuilder::I64(b), Cell::I64(v)) => b.append_value(v),
            (ColBuilder::I64(b), Cell::U64(v)) => b.append_option(i64::try_from(v).ok()),
            (ColBuilder::I64(b), _) => b.append_null(),
            (ColBuilder::F64(b), Cell::F64(v)) => b.append_value(v),
            (ColBuilder::F64(b), _) => b.append_null(),
            (ColBuilder::Bool(b), Cell::Bool(v)) => b.append_value(v),
            (ColBuilder::Bool(b), _) => b.append_null(),
            (ColBuilder::Str(b), Cell::Str(v)) => b.append_value(v),
            (ColBuilder::Str(b), Cell::Owned(v)) => b.append_value(v),
            (ColBuilder::Str(b), _) => b.append_null(),
            (ColBuilder::Ts(b), Cell::Ts(v)) => b.append_value(v),
            (ColBuilder::Ts(b), _) => b.append_null(),
            (ColBuilder::Strs(b), Cell::Strs(v)) => {
                for s in v {
                    b.values().append_value(s);
                }
                b.append(true);
            }
            (ColBuilder::Strs(b), Cell::OwnedStrs(v)) => {
                for s in v {
                    b.values().append_value(s);
                }
                b.append(true);
            }
            (ColBuilder::Strs(b), _) => b.append(false),
        }
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            ColBuilder::U64(b) => Arc::new(b.finish()),
            ColBuilder::I64(b) => Arc::new(b.finish()),
            ColBuilder::F64(b) => Arc::new(b.finish()),
            ColBuilder::Bool(b) => Arc::new(b.finish()),
            ColBuilder::Str(b) => Arc::new(b.finish()),
            ColBuilder::Ts(b) => Arc::new(b.finish()),
            ColBuilder::Strs(b) => Arc::new(b.finish()),
        }
    }
}

/// The schema of `columns`; every column is nullable except those named in `required`.
pub fn schema_of(columns: &[Column], required: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(c.name, c.kind.data_type(), !required.contains(&c.name)))
            .collect::<Vec<_>>(),
    ))
}

/// Rows in, one record batch out.
pub struct BatchBuilder<'c> {
    columns: &'c [Column],
    schema: SchemaRef,
    builders: Vec<ColBuilder>,
    rows: usize,
}

impl<'c> BatchBuilder<'c> {
    pub fn new(columns: &'c [Column], schema: SchemaRef, capacity: usize) -> Self {
        let builders = columns.iter().map(|c| ColBuilder::new(c.kind, capacity)).collect();
        BatchBuilder { columns, schema, builders, rows: 0 }
    }

    pub fn push(&mut self, row: &Row<'_>) {
        for (c, b) in self.columns.iter().zip(&mut self.builders) {
            b.push((c.get)(row));
        }
        self.rows += 1;
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        self.rows = 0;
        let arrays = self.builders.iter_mut().map(ColBuilder::finish).collect();
        RecordBatch::try_new(self.schema.clone(), arrays)
    }
}

import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { DENIED_FUNCTIONS } from './denied-functions.ts';

/** Table functions of DuckDB 1.5.6 (with its built-in extensions) reviewed as read-only. */
const REVIEWED_READ_ONLY = new Set(
  `check_peg_parser duckdb_approx_database_count duckdb_columns duckdb_connection_count duckdb_constraints
  duckdb_coordinate_systems duckdb_databases duckdb_dependencies duckdb_extensions duckdb_external_file_cache
  duckdb_functions duckdb_indexes duckdb_keywords duckdb_log_contexts duckdb_logs duckdb_memory duckdb_optimizers
  duckdb_prepared_statements duckdb_schemas duckdb_secret_types duckdb_secrets duckdb_sequences duckdb_settings
  duckdb_table_sample duckdb_tables duckdb_temporary_files duckdb_types duckdb_variables duckdb_views generate_series
  glob icu_calendar_names json_each json_tree parquet_bloom_probe parquet_file_metadata parquet_full_metadata
  parquet_kv_metadata parquet_metadata parquet_scan parquet_schema pg_timezone_names pragma_collations
  pragma_database_size pragma_metadata_info pragma_platform pragma_show pragma_storage_info pragma_table_info
  pragma_user_agent pragma_version range read_blob read_csv read_csv_auto read_duckdb read_json read_json_auto
  read_json_objects read_json_objects_auto read_ndjson read_ndjson_auto read_ndjson_objects read_parquet read_text
  repeat repeat_row seq_scan sniff_csv sql_auto_complete summary test_all_types test_vector_types unnest which_secret`.split(/\s+/),
);

describe('DENIED_FUNCTIONS', () => {
  it('together with the reviewed read-only list covers every table function DuckDB offers', async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const names = (await connection.runAndReadAll("SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'table' ORDER BY 1"))
      .getRowsJS()
      .map((row) => String(row[0]));
    connection.closeSync();
    instance.closeSync();
    const unreviewed = names.filter((name) => !REVIEWED_READ_ONLY.has(name) && !DENIED_FUNCTIONS.has(name));
    expect(unreviewed, 'new table functions: add each to DENIED_FUNCTIONS or, if it cannot act, to REVIEWED_READ_ONLY').toEqual([]);
  });
});

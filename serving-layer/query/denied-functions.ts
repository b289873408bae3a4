/**
 * Functions a SELECT may not call, found in DuckDB's parse tree (read-only-statement.ts). The
 * locked configuration does not stop them (measured on DuckDB 1.5.6: `SELECT * FROM
 * enable_profiling()` turns profiling on, printing a plan for every later query, after
 * `lock_configuration = true`). Every table function of the build was reviewed; the test
 * `denied-functions.test.ts` fails when a DuckDB upgrade brings a table function nobody reviewed.
 */
export const DENIED_FUNCTIONS: ReadonlyMap<string, string> = new Map([
  // Change the database or the process's settings.
  ['checkpoint', 'writes the database'],
  ['force_checkpoint', 'writes the database'],
  ['enable_profiling', "changes the node's profiling settings"],
  ['disable_profiling', "changes the node's profiling settings"],
  ['enable_logging', "changes the node's logging settings"],
  ['disable_logging', "changes the node's logging settings"],
  ['truncate_duckdb_logs', "deletes the node's logs"],
  ['write_log', "writes to the node's logs"],
  ['enable_peg_parser', "changes the node's SQL parser"],
  ['disable_peg_parser', "changes the node's SQL parser"],
  ['setseed', "changes a pooled connection's random state"],
  // Run SQL that is not in the parse tree, so it would escape these checks.
  ['query', 'runs SQL from a string'],
  ['query_table', 'runs SQL from a string'],
  ['json_execute_serialized_sql', 'runs SQL from a string'],
  // Read memory at an address given as a number.
  ['arrow_scan', 'reads process memory by address'],
  ['arrow_scan_dumb', 'reads process memory by address'],
]);

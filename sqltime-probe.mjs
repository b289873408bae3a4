import { DuckDBConnection } from '@duckdb/node-api';
for (const m of ['run', 'runAndReadAll']) {
  const orig = DuckDBConnection.prototype[m];
  DuckDBConnection.prototype[m] = async function (sql, ...rest) {
    const t = performance.now();
    try { return await orig.call(this, sql, ...rest); }
    finally { const ms = performance.now() - t; if (ms > 4) process.stderr.write(`SQL ${Date.now()} ${ms.toFixed(0)} ${String(sql).replace(/\s+/g, ' ').slice(0, 160)}\n`); }
  };
}

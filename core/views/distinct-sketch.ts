/**
 * The mergeable distinct-count sketch behind approx_count_distinct: a K-minimum-values (KMV)
 * sketch over DuckDB's 64-bit `hash()`, written as SQL macros so that the batch and speed layers
 * run the very same code on the very same hash.
 *
 * State: the K smallest distinct hashes seen, as a list: in no particular order while it holds
 * fewer than K (every distinct hash seen: nothing to cut, so nothing to sort), sorted once it
 * holds K. Merge: union, distinct, and past K sort and keep the K smallest — associative,
 * commutative and idempotent, so any split of the data into parts gives the same state (the
 * same set of hashes). Estimate: exact below K distinct values; above, (K - 1) / u_K where u_K is
 * the K-th smallest hash scaled to [0, 1): relative standard error 1/sqrt(K - 2) ≈ 0.78%.
 */
export const SKETCH_SIZE = 16_384;

export const DISTINCT_SKETCH_MACROS: readonly string[] = [
  // The sketch of a list of hashes (NULL stays NULL: a group with no non-null values). A list of
  // one hash is its own sketch: most groups of a micro-batch's partial state hold one event, and
  // the CASE spares them the list functions (a third of the partial state's cost). Fewer than K
  // hashes hold fewer than K distinct ones, all kept: no sort (a third of the cost of the small
  // groups of a realtime fill, one per view key and block).
  `CREATE OR REPLACE MACRO lambda_kmv_from_hashes(hashes) AS
     CASE WHEN len(hashes) = 1 AND hashes[1] IS NOT NULL THEN hashes
          WHEN len(hashes) < ${SKETCH_SIZE} THEN list_distinct(hashes)
          ELSE list_slice(list_sort(list_distinct(hashes)), 1, ${SKETCH_SIZE}) END`,
  // Merges a list of sketches (the result of list(sketch)); NULL sketches are ignored. A sketch
  // is already distinct and at most K long, so a list of one is its own merge: most groups of a
  // rollup or a view's upkeep merge one state row, and skip the sort.
  `CREATE OR REPLACE MACRO lambda_kmv_merge(sketches) AS
     CASE WHEN len(sketches) = 1 AND sketches[1] IS NOT NULL THEN sketches[1]
          ELSE lambda_kmv_from_hashes(flatten(list_filter(sketches, s -> s IS NOT NULL))) END`,
  `CREATE OR REPLACE MACRO lambda_kmv_estimate(sketch) AS
     CASE
       WHEN sketch IS NULL THEN 0::BIGINT
       WHEN len(sketch) < ${SKETCH_SIZE} THEN len(sketch)::BIGINT
       ELSE round((${SKETCH_SIZE} - 1) / (sketch[${SKETCH_SIZE}]::DOUBLE / 18446744073709551616.0))::BIGINT
     END`,
];

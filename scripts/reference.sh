#!/usr/bin/env bash
# Prints the README reference section from the COMMENT ON text of every recsys
# object, so the two cannot drift apart. --write replaces the section in README.md.
# Needs a database with recsys installed (PGHOST/PGPORT/PGUSER, database $1 or postgres).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=print
[ "${1:-}" = "--write" ] && { MODE=write; shift; }
DB=${1:-postgres}

generate() {
    psql -X -At -d "$DB" <<'SQL'
WITH members AS (
    SELECT d.classid, d.objid FROM pg_depend d
     WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
       AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'recsys')),
objs AS (
    SELECT CASE WHEN n.nspname = 'recsys' THEN 2 ELSE 1 END AS grp, 'function' AS kind,
           format('%s.%s(%s)', n.nspname, p.proname, pg_get_function_arguments(p.oid)) AS sig,
           pg_get_function_result(p.oid) AS result, obj_description(p.oid, 'pg_proc') AS doc
      FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
      JOIN pg_namespace n ON n.oid = p.pronamespace
    UNION ALL
    SELECT 3, CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' ELSE 'sequence' END,
           c.oid::regclass::text, NULL, obj_description(c.oid, 'pg_class')
      FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
     WHERE c.relkind IN ('r', 'v', 'S') AND obj_description(c.oid, 'pg_class') IS NOT NULL)
SELECT string_agg(line, E'\n' ORDER BY grp, sig) FROM (
    SELECT grp, sig,
           CASE WHEN kind = 'function'
                THEN format(E'- `%s` → `%s`  \n  %s', sig, result, doc)
                ELSE format(E'- %s `%s`  \n  %s', kind, sig, doc) END AS line
      FROM objs
    UNION ALL
    -- the options of every function family, as recsys.option_specs() declares them (src/options.c)
    SELECT 4, family || to_char(n, 'FM0000'),
           CASE WHEN n = 1 THEN format(E'\nOptions of `%s`:\n', family) ELSE '' END
           || format('- `%s` (%s%s%s): %s', key, type,
                     CASE WHEN min IS NOT NULL THEN format(', %s to %s', min, max) ELSE '' END,
                     CASE WHEN "default" IS NOT NULL THEN format(', default %s', "default") ELSE '' END, help)
      FROM (SELECT o.*, row_number() OVER (PARTITION BY o.family ORDER BY ord) AS n
              FROM recsys.option_specs() WITH ORDINALITY AS o(family, key, type, min, max, "default", help, ord)) s) x;
SQL
}

if [ "$MODE" = print ]; then
    generate
else
    body=$(generate)
    python3 - "$ROOT/README.md" "$body" <<'PY'
import sys
path, body = sys.argv[1], sys.argv[2]
text = open(path).read()
start, end = '<!-- reference:start -->', '<!-- reference:end -->'
i, j = text.index(start) + len(start), text.index(end)
open(path, 'w').write(text[:i] + '\n' + body + '\n' + text[j:])
PY
fi

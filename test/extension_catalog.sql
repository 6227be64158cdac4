-- Every object of the installed recsys with what defines it (function bodies and attributes, columns, defaults,
-- indexes, constraints, triggers, views, privileges, comments, dump configuration), one sorted line each:
-- test/upgrade.sh compares a fresh install with one reached by ALTER EXTENSION UPDATE.
WITH ext AS (SELECT oid, extconfig, extcondition FROM pg_extension WHERE extname = 'recsys'),
m AS (SELECT d.classid, d.objid, d.objsubid FROM pg_depend d, ext
       WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e')
SELECT pg_describe_object(m.classid, m.objid, m.objsubid) || ' | ' || coalesce(CASE m.classid
  WHEN 'pg_proc'::regclass THEN (
    SELECT concat_ws(' ', p.prokind, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid),
                     p.provolatile, p.proisstrict, p.proparallel, p.prosecdef, p.proconfig::text, md5(p.prosrc),
                     p.probin, p.proacl::text, p.procost, p.prorows)
      FROM pg_proc p WHERE p.oid = m.objid)
  WHEN 'pg_class'::regclass THEN (
    SELECT concat_ws(' ', c.relkind, c.relacl::text,
             (SELECT string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull || ':'
                                || coalesce(pg_get_expr(ad.adbin, ad.adrelid), ''), ',' ORDER BY a.attnum)
                FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
             (SELECT string_agg(pg_get_indexdef(i.indexrelid), '; ' ORDER BY 1) FROM pg_index i WHERE i.indrelid = c.oid),
             (SELECT string_agg(conname || '=' || pg_get_constraintdef(oid), '; ' ORDER BY conname)
                FROM pg_constraint WHERE conrelid = c.oid),
             (SELECT string_agg(pg_get_triggerdef(t.oid), '; ' ORDER BY 1) FROM pg_trigger t
               WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
             CASE WHEN c.relkind IN ('v', 'm') THEN md5(pg_get_viewdef(c.oid)) END,
             (SELECT string_agg(a.attname || '=' || col_description(c.oid, a.attnum), ',' ORDER BY a.attnum)
                FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND col_description(c.oid, a.attnum) IS NOT NULL))
      FROM pg_class c WHERE c.oid = m.objid)
  WHEN 'pg_namespace'::regclass THEN (SELECT nspacl::text FROM pg_namespace WHERE oid = m.objid)
  END, '') || ' | ' || coalesce((SELECT description FROM pg_description
                                  WHERE objoid = m.objid AND classoid = m.classid AND objsubid = 0), '')
  FROM m
UNION ALL
SELECT 'dump configuration: ' || c::regclass::text || ' ' || coalesce(w, '')
  FROM ext, unnest(ext.extconfig, ext.extcondition) AS u(c, w)
ORDER BY 1;

-- The version lives in recsys.control; the install script name and the module must agree with it.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS recsys CASCADE;
CREATE EXTENSION recsys;
SELECT e.extversion = recsys.version() AS module_matches_installed
  FROM pg_extension e WHERE e.extname = 'recsys';
SELECT a.default_version = recsys.version() AS module_matches_control
  FROM pg_available_extensions a WHERE a.name = 'recsys';
SELECT count(*) = 1 AS install_script_for_control_version
  FROM pg_available_extension_versions v WHERE v.name = 'recsys' AND v.version = recsys.version();
-- serving functions in the extension's schema, state in schema recsys
SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid) AS args
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.proname LIKE 'recommend%' ORDER BY 1, 2, 3;
SELECT extrelocatable, n.nspname AS extension_schema
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'recsys';

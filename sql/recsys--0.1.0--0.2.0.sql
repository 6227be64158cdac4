/* recsys upgrade script 0.1.0 -> 0.2.0: only the delta (released scripts never change; see sql/RELEASED) */
\echo Use "ALTER EXTENSION recsys UPDATE TO '0.2.0'" to load this file. \quit

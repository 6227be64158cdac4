# Expands an upgrade script's source (sql/updates/*.sql): a line
#   --#include FILE OBJECT
# becomes the block of FILE between "--@begin OBJECT" and "--@end", so an upgrade carries an object's definition
# from its one source file and never a copy of it. Every other line passes unchanged. A missing block is an error.
/^--#include / {
    file = $2
    obj = substr($0, length($1) + length($2) + 3)
    inblock = 0; found = 0
    while ((getline line < file) > 0) {
        if (!inblock && line == "--@begin " obj) { inblock = 1; found = 1; continue }
        if (inblock && line == "--@end") break
        if (inblock) print line
    }
    close(file)
    if (!found) { printf "%s:%d: no block \"--@begin %s\" in %s\n", FILENAME, FNR, obj, file > "/dev/stderr"; exit 1 }
    next
}
{ print }

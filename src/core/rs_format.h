/*
 * rs_format.h — the recsys weights format, version 1 (plain C, no PostgreSQL).
 *
 * Layout (all integers little-endian, offsets from the start of the buffer):
 *
 *   0   char[4]  magic "RSYS"
 *   4   u16      format version (1)
 *   6   u16      flags (reserved, must be 0)
 *   8   u16      model kind (RsModelKind)
 *   10  u16      tensor count n (1 .. RS_MAX_TENSORS)
 *   12  u32      config length c (bytes of UTF-8 JSON, may be 0)
 *   16  u64      total size of the buffer, CRC included
 *   24  u64      reserved, must be 0
 *   32  n x 64   tensor table: name[32] (NUL padded), u16 dtype, u16 ndim,
 *                u32 dims[4] (unused dims 0), u32 reserved 0, u64 offset
 *   ..  c bytes  config JSON, then zero padding to a 16-byte boundary
 *   ..           tensors in table order, each float32 payload starting on a
 *                16-byte boundary and zero padded to the next one
 *   end-4 u32    CRC-32C of every byte before it
 *
 * The layout is canonical: every offset and padding byte is determined by the
 * table, so the parser can insist on it and no byte is meaningless.
 */
#ifndef RS_FORMAT_H
#define RS_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define RS_FORMAT_MAGIC "RSYS"
#define RS_FORMAT_VERSION 1
#define RS_HEADER_SIZE 32
#define RS_TABLE_ENTRY_SIZE 64
#define RS_NAME_LEN 32
#define RS_MAX_DIMS 4
#define RS_MAX_TENSORS 1024
#define RS_ALIGN 16
/* bytea tops out at 1 GB; keep every size comfortably inside int32 math */
#define RS_MAX_TOTAL_SIZE ((uint64_t) 1 << 30)
#define RS_MAX_CONFIG_LEN (1 << 20)

typedef enum RsDtype
{
	RS_DTYPE_FLOAT32 = 1
} RsDtype;

typedef enum RsModelKind
{
	RS_KIND_MLP = 1,
	RS_KIND_RNN = 2,
	RS_KIND_GRU = 3,
	RS_KIND_BASELINE = 4,
	RS_KIND_BUNDLE = 5,
	RS_KIND_MAX = 5
} RsModelKind;

typedef enum RsFormatError
{
	RS_OK = 0,
	RS_ERR_SIZE,
	RS_ERR_MAGIC,
	RS_ERR_VERSION,
	RS_ERR_FLAGS,
	RS_ERR_KIND,
	RS_ERR_TABLE,
	RS_ERR_DIMS,
	RS_ERR_LAYOUT,
	RS_ERR_CRC,
	RS_ERR_NONFINITE,
	RS_ERR_ARGUMENT
} RsFormatError;

/* One tensor as the writer describes it, or as the parser decodes it. */
typedef struct RsTensorDesc
{
	char		name[RS_NAME_LEN];	/* NUL terminated, [a-z0-9_.], 1..31 chars */
	int			ndim;
	int64_t		dims[RS_MAX_DIMS];
	int64_t		numel;
	uint64_t	offset;			/* set by the parser / rs_format_layout */
} RsTensorDesc;

/* A validated buffer: pointers into it, nothing copied. */
typedef struct RsFormatView
{
	const uint8_t *buf;
	size_t		len;
	int			kind;
	int			ntensors;
	const char *config;
	size_t		config_len;
	uint32_t	crc;
} RsFormatView;

/* CRC-32C through the host's hook (rs_host.crc32c: PostgreSQL's pg_crc32c) */
extern uint32_t rs_crc32c(const void *data, size_t len);

extern const char *rs_kind_name(int kind);
extern int	rs_kind_from_name(const char *name);
extern int	rs_name_valid(const char *name);

/*
 * Writing: fill descs (name, ndim, dims), call rs_format_layout to get the
 * total size and offsets, allocate, then rs_format_write and copy payloads to
 * buf + descs[i].offset (or pass data pointers to rs_format_write).
 */
extern RsFormatError rs_format_layout(int ntensors, RsTensorDesc *descs,
									  size_t config_len, uint64_t *total_size,
									  char *errbuf, size_t errlen);
extern void rs_format_write(uint8_t *buf, uint64_t total_size, int kind,
							int ntensors, const RsTensorDesc *descs,
							const float *const *data,
							const char *config, size_t config_len);

/*
 * Parsing: checks size, header, table, dims, layout and CRC, in that order,
 * then that every weight is finite. Nothing is read past what was checked.
 */
extern RsFormatError rs_format_parse(const uint8_t *buf, size_t len,
									 RsFormatView *view,
									 char *errbuf, size_t errlen);
extern void rs_format_tensor(const RsFormatView *view, int i, RsTensorDesc *desc);
extern int	rs_format_find(const RsFormatView *view, const char *name, RsTensorDesc *desc);
extern void rs_format_copy(const RsFormatView *view, const RsTensorDesc *desc, float *dst);

#endif							/* RS_FORMAT_H */

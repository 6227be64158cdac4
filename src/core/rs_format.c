/*
 * rs_format.c — writer and validating parser of the v1 weights format.
 * See rs_format.h for the layout. Plain C: errors come back as codes plus a
 * message in the caller's buffer; the PostgreSQL glue turns them into ERRORs.
 */
#include "rs_format.h"
#include "rs_core.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

uint32_t
rs_crc32c(const void *data, size_t len)
{
	return rs_host.crc32c(data, len);
}

static const char *const kind_names[] = {NULL, "mlp", "rnn", "gru", "baseline", "bundle"};

const char *
rs_kind_name(int kind)
{
	if (kind < 1 || kind > RS_KIND_MAX)
		return NULL;
	return kind_names[kind];
}

int
rs_kind_from_name(const char *name)
{
	for (int k = 1; k <= RS_KIND_MAX; k++)
		if (strcmp(kind_names[k], name) == 0)
			return k;
	return 0;
}

int
rs_name_valid(const char *name)
{
	size_t		n = strnlen(name, RS_NAME_LEN);

	if (n == 0 || n >= RS_NAME_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
	{
		char		c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

static RsFormatError fail(RsFormatError code, char *errbuf, size_t errlen, const char *fmt,...)
			__attribute__((format(printf, 4, 5)));

static RsFormatError
fail(RsFormatError code, char *errbuf, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (errbuf && errlen)
	{
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

static inline uint64_t
align16(uint64_t x)
{
	return (x + RS_ALIGN - 1) & ~(uint64_t) (RS_ALIGN - 1);
}

/* Little-endian accessors: the format is LE whatever the host is. */
static inline uint16_t
get16(const uint8_t *p)
{
	return (uint16_t) (p[0] | (p[1] << 8));
}
static inline uint32_t
get32(const uint8_t *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}
static inline uint64_t
get64(const uint8_t *p)
{
	return (uint64_t) get32(p) | ((uint64_t) get32(p + 4) << 32);
}
static inline void
put16(uint8_t *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}
static inline void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}
static inline void
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t) v);
	put32(p + 4, (uint32_t) (v >> 32));
}

/* Checks dims and computes numel; shared by writer and parser. */
static RsFormatError
check_dims(RsTensorDesc *d, char *errbuf, size_t errlen)
{
	int64_t		numel = 1;

	if (d->ndim < 1 || d->ndim > RS_MAX_DIMS)
		return fail(RS_ERR_DIMS, errbuf, errlen, "tensor \"%s\" has %d dimensions, expected 1 to %d",
					d->name, d->ndim, RS_MAX_DIMS);
	for (int j = 0; j < d->ndim; j++)
	{
		if (d->dims[j] < 1 || d->dims[j] > INT32_MAX)
			return fail(RS_ERR_DIMS, errbuf, errlen, "tensor \"%s\" dimension %d is %lld, expected 1 to %d",
						d->name, j + 1, (long long) d->dims[j], INT32_MAX);
		numel *= d->dims[j];
		if ((uint64_t) numel * sizeof(float) > RS_MAX_TOTAL_SIZE)
			return fail(RS_ERR_DIMS, errbuf, errlen, "tensor \"%s\" is larger than 1 GB", d->name);
	}
	d->numel = numel;
	return RS_OK;
}

RsFormatError
rs_format_layout(int ntensors, RsTensorDesc *descs, size_t config_len,
				 uint64_t *total_size, char *errbuf, size_t errlen)
{
	uint64_t	off;

	if (ntensors < 1 || ntensors > RS_MAX_TENSORS)
		return fail(RS_ERR_ARGUMENT, errbuf, errlen, "a model needs 1 to %d tensors, got %d",
					RS_MAX_TENSORS, ntensors);
	if (config_len > RS_MAX_CONFIG_LEN)
		return fail(RS_ERR_ARGUMENT, errbuf, errlen, "config is %zu bytes, the limit is %d",
					config_len, RS_MAX_CONFIG_LEN);
	off = align16(RS_HEADER_SIZE + (uint64_t) ntensors * RS_TABLE_ENTRY_SIZE + config_len);
	for (int i = 0; i < ntensors; i++)
	{
		RsFormatError e;

		if (!rs_name_valid(descs[i].name))
			return fail(RS_ERR_ARGUMENT, errbuf, errlen,
						"tensor name \"%.*s\" must be 1 to %d characters of a-z, 0-9, _ and .",
						RS_NAME_LEN, descs[i].name, RS_NAME_LEN - 1);
		for (int j = 0; j < i; j++)
			if (strcmp(descs[i].name, descs[j].name) == 0)
				return fail(RS_ERR_ARGUMENT, errbuf, errlen, "tensor name \"%s\" appears twice", descs[i].name);
		if ((e = check_dims(&descs[i], errbuf, errlen)) != RS_OK)
			return e;
		descs[i].offset = off;
		off = align16(off + (uint64_t) descs[i].numel * sizeof(float));
		if (off + 4 > RS_MAX_TOTAL_SIZE)
			return fail(RS_ERR_ARGUMENT, errbuf, errlen, "model is larger than 1 GB");
	}
	*total_size = off + 4;
	return RS_OK;
}

void
rs_format_write(uint8_t *buf, uint64_t total_size, int kind, int ntensors,
				const RsTensorDesc *descs, const float *const *data,
				const char *config, size_t config_len)
{
	uint8_t    *t;

	memset(buf, 0, total_size);
	memcpy(buf, RS_FORMAT_MAGIC, 4);
	put16(buf + 4, RS_FORMAT_VERSION);
	put16(buf + 6, 0);
	put16(buf + 8, (uint16_t) kind);
	put16(buf + 10, (uint16_t) ntensors);
	put32(buf + 12, (uint32_t) config_len);
	put64(buf + 16, total_size);
	t = buf + RS_HEADER_SIZE;
	for (int i = 0; i < ntensors; i++, t += RS_TABLE_ENTRY_SIZE)
	{
		strncpy((char *) t, descs[i].name, RS_NAME_LEN - 1);
		put16(t + 32, RS_DTYPE_FLOAT32);
		put16(t + 34, (uint16_t) descs[i].ndim);
		for (int j = 0; j < descs[i].ndim; j++)
			put32(t + 36 + 4 * j, (uint32_t) descs[i].dims[j]);
		put64(t + 56, descs[i].offset);
		if (data && data[i])
		{
			/* host floats are IEEE-754; byte order is fixed to LE */
			uint8_t    *dst = buf + descs[i].offset;

			for (int64_t k = 0; k < descs[i].numel; k++)
			{
				uint32_t	bits;

				memcpy(&bits, &data[i][k], 4);
				put32(dst + 4 * k, bits);
			}
		}
	}
	if (config_len)
		memcpy(t, config, config_len);
	put32(buf + total_size - 4, rs_crc32c(buf, total_size - 4));
}

static int
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

void
rs_format_tensor(const RsFormatView *view, int i, RsTensorDesc *d)
{
	const uint8_t *t = view->buf + RS_HEADER_SIZE + (size_t) i * RS_TABLE_ENTRY_SIZE;

	memset(d, 0, sizeof(*d));
	memcpy(d->name, t, RS_NAME_LEN);
	d->name[RS_NAME_LEN - 1] = '\0';
	d->ndim = get16(t + 34);
	d->numel = 1;
	for (int j = 0; j < d->ndim && j < RS_MAX_DIMS; j++)
	{
		d->dims[j] = get32(t + 36 + 4 * j);
		/* saturating: crafted dims must not overflow here; check_dims refuses them afterwards (found by fuzzing) */
		if (d->dims[j] != 0 && d->numel > INT64_MAX / d->dims[j])
			d->numel = INT64_MAX;
		else
			d->numel *= d->dims[j];
	}
	d->offset = get64(t + 56);
}

RsFormatError
rs_format_parse(const uint8_t *buf, size_t len, RsFormatView *view,
				char *errbuf, size_t errlen)
{
	uint64_t	total,
				off;
	int			n;
	size_t		config_len;
	uint32_t	stored_crc,
				crc;
	RsFormatView raw = {.buf = buf, .len = len};

	memset(view, 0, sizeof(*view));
	/* 1. size and header */
	if (len < RS_HEADER_SIZE + RS_TABLE_ENTRY_SIZE + 4)
		return fail(RS_ERR_SIZE, errbuf, errlen, "%zu bytes is too short for a model", len);
	if (memcmp(buf, RS_FORMAT_MAGIC, 4) != 0)
		return fail(RS_ERR_MAGIC, errbuf, errlen, "bad magic number, this is not recsys weights");
	if (get16(buf + 4) != RS_FORMAT_VERSION)
		return fail(RS_ERR_VERSION, errbuf, errlen, "format version %u is not supported (this build reads %d)",
					get16(buf + 4), RS_FORMAT_VERSION);
	if (get16(buf + 6) != 0 || get64(buf + 24) != 0)
		return fail(RS_ERR_FLAGS, errbuf, errlen, "reserved header bits are set");
	if (rs_kind_name(get16(buf + 8)) == NULL)
		return fail(RS_ERR_KIND, errbuf, errlen, "unknown model kind %u", get16(buf + 8));
	n = get16(buf + 10);
	if (n < 1 || n > RS_MAX_TENSORS)
		return fail(RS_ERR_TABLE, errbuf, errlen, "tensor count %d is out of range", n);
	config_len = get32(buf + 12);
	if (config_len > RS_MAX_CONFIG_LEN)
		return fail(RS_ERR_TABLE, errbuf, errlen, "config length %zu is out of range", config_len);
	total = get64(buf + 16);
	if (total != len)
		return fail(RS_ERR_SIZE, errbuf, errlen, "header says %llu bytes but the value has %zu",
					(unsigned long long) total, len);
	off = align16(RS_HEADER_SIZE + (uint64_t) n * RS_TABLE_ENTRY_SIZE + config_len);
	if (off + 4 > len)
		return fail(RS_ERR_SIZE, errbuf, errlen, "tensor table and config do not fit in %zu bytes", len);
	if (!all_zero(buf + RS_HEADER_SIZE + (size_t) n * RS_TABLE_ENTRY_SIZE + config_len,
				  off - (RS_HEADER_SIZE + (size_t) n * RS_TABLE_ENTRY_SIZE + config_len)))
		return fail(RS_ERR_LAYOUT, errbuf, errlen, "padding after the config is not zero");

	/* 2. tensor table: names, dtypes, dims, canonical offsets */
	for (int i = 0; i < n; i++)
	{
		const uint8_t *t = buf + RS_HEADER_SIZE + (size_t) i * RS_TABLE_ENTRY_SIZE;
		RsTensorDesc d;
		RsFormatError e;
		size_t		namelen = strnlen((const char *) t, RS_NAME_LEN);

		if (namelen == RS_NAME_LEN || !all_zero(t + namelen, RS_NAME_LEN - namelen))
			return fail(RS_ERR_TABLE, errbuf, errlen, "tensor %d has a malformed name", i + 1);
		rs_format_tensor(&raw, i, &d);
		if (!rs_name_valid(d.name))
			return fail(RS_ERR_TABLE, errbuf, errlen, "tensor %d has an invalid name", i + 1);
		if (get16(t + 32) != RS_DTYPE_FLOAT32)
			return fail(RS_ERR_TABLE, errbuf, errlen, "tensor \"%s\" has unknown dtype %u", d.name, get16(t + 32));
		if (d.ndim < 1 || d.ndim > RS_MAX_DIMS)
			return fail(RS_ERR_DIMS, errbuf, errlen, "tensor \"%s\" has %d dimensions, expected 1 to %d",
						d.name, d.ndim, RS_MAX_DIMS);
		for (int j = d.ndim; j < RS_MAX_DIMS; j++)
			if (get32(t + 36 + 4 * j) != 0)
				return fail(RS_ERR_DIMS, errbuf, errlen, "tensor \"%s\" has a stray dimension %d", d.name, j + 1);
		if (get32(t + 52) != 0)
			return fail(RS_ERR_TABLE, errbuf, errlen, "tensor \"%s\" has reserved bits set", d.name);
		if ((e = check_dims(&d, errbuf, errlen)) != RS_OK)
			return e;
		for (int j = 0; j < i; j++)
			if (strncmp((const char *) t, (const char *) buf + RS_HEADER_SIZE + (size_t) j * RS_TABLE_ENTRY_SIZE,
						RS_NAME_LEN) == 0)
				return fail(RS_ERR_TABLE, errbuf, errlen, "tensor name \"%s\" appears twice", d.name);
		if (d.offset != off)
			return fail(RS_ERR_LAYOUT, errbuf, errlen, "tensor \"%s\" starts at %llu, expected %llu",
						d.name, (unsigned long long) d.offset, (unsigned long long) off);
		if (off + (uint64_t) d.numel * 4 + 4 > len)
			return fail(RS_ERR_SIZE, errbuf, errlen, "tensor \"%s\" (%lld values) runs past the end",
						d.name, (long long) d.numel);
		{
			uint64_t	end = off + (uint64_t) d.numel * 4;

			off = align16(end);
			if (off + 4 > len || !all_zero(buf + end, off - end))
				return fail(RS_ERR_LAYOUT, errbuf, errlen, "padding after tensor \"%s\" is not zero", d.name);
		}
	}
	if (off + 4 != len)
		return fail(RS_ERR_SIZE, errbuf, errlen, "%llu trailing bytes after the last tensor",
					(unsigned long long) (len - off - 4));

	/* 3. checksum over everything before it */
	stored_crc = get32(buf + len - 4);
	crc = rs_crc32c(buf, len - 4);
	if (crc != stored_crc)
		return fail(RS_ERR_CRC, errbuf, errlen, "checksum mismatch (stored %08x, computed %08x)", stored_crc, crc);

	view->buf = buf;
	view->len = len;
	view->kind = get16(buf + 8);
	view->ntensors = n;
	view->config = (const char *) buf + RS_HEADER_SIZE + (size_t) n * RS_TABLE_ENTRY_SIZE;
	view->config_len = config_len;
	view->crc = crc;

	/* 4. weights: only now, and only finite values are accepted */
	for (int i = 0; i < n; i++)
	{
		RsTensorDesc d;

		rs_format_tensor(view, i, &d);
		for (int64_t k = 0; k < d.numel; k++)
		{
			uint32_t	bits = get32(buf + d.offset + 4 * k);

			if ((bits & 0x7f800000u) == 0x7f800000u)
			{
				memset(view, 0, sizeof(*view));
				return fail(RS_ERR_NONFINITE, errbuf, errlen, "tensor \"%s\" holds NaN or infinity at index %lld",
							d.name, (long long) k);
			}
		}
	}
	return RS_OK;
}

int
rs_format_find(const RsFormatView *view, const char *name, RsTensorDesc *desc)
{
	for (int i = 0; i < view->ntensors; i++)
	{
		rs_format_tensor(view, i, desc);
		if (strcmp(desc->name, name) == 0)
			return i;
	}
	return -1;
}

void
rs_format_copy(const RsFormatView *view, const RsTensorDesc *desc, float *dst)
{
	const uint8_t *src = view->buf + desc->offset;

	for (int64_t k = 0; k < desc->numel; k++)
	{
		uint32_t	bits = get32(src + 4 * k);

		memcpy(&dst[k], &bits, 4);
	}
}

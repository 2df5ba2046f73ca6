/* Number formatting for the ModelBlocks firmware console, without printf: integers, hex, and
 * doubles with a fixed number of digits (fixed-point or scientific). Plain C on top of fw_putc,
 * so ModelBlocks' tests also run it on the host. */
#include "fw_board.h"

void fw_puts(const char *s)
{
    while (*s) {
        fw_putc(*s++);
    }
}

void fw_put_u64(uint64_t v)
{
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v);
    fw_puts(&buf[i]);
}

void fw_put_u32(uint32_t v)
{
    fw_put_u64(v);
}

void fw_put_i32(int32_t v)
{
    if (v < 0) {
        fw_putc('-');
        fw_put_u64((uint64_t)(-(int64_t)v));
    } else {
        fw_put_u64((uint64_t)v);
    }
}

void fw_put_hex32(uint32_t v)
{
    fw_puts("0x");
    for (int i = 7; i >= 0; --i) {
        fw_putc("0123456789ABCDEF"[(v >> (4 * i)) & 0xFu]);
    }
}

void fw_put_padded(const char *s, uint32_t width)
{
    uint32_t n = 0;
    for (; s && s[n] && n < width; ++n) {
        fw_putc(s[n]);
    }
    for (; n < width; ++n) {
        fw_putc(' ');
    }
}

void fw_put_u32_right(uint32_t v, uint32_t width)
{
    uint32_t digits = 1;
    for (uint32_t t = v; t >= 10u; t /= 10u) {
        ++digits;
    }
    for (; digits < width; ++digits) {
        fw_putc(' ');
    }
    fw_put_u32(v);
}

static int fw_special(double v)
{
    if (v != v) {
        fw_puts("nan");
        return 1;
    }
    if (v > 1.7976931348623157e308 || v < -1.7976931348623157e308) {
        fw_puts(v > 0 ? "inf" : "-inf");
        return 1;
    }
    return 0;
}

static uint64_t fw_pow10(uint32_t n)
{
    uint64_t p = 1;
    while (n--) {
        p *= 10u;
    }
    return p;
}

/* The same power as a double, built without a 64-bit-integer-to-double conversion (which would
 * pull libgcc's software double routines into the image). */
static double fw_pow10d(uint32_t n)
{
    double p = 1.0;
    while (n--) {
        p *= 10.0;
    }
    return p;
}

void fw_put_fixed(double v, uint32_t decimals)
{
    if (fw_special(v)) {
        return;
    }
    if (decimals > 9u) {
        decimals = 9u;
    }
    if (v < 0) {
        fw_putc('-');
        v = -v;
    }
    if (v >= 1e12) { /* beyond what the integer path below can hold */
        fw_put_sci(v, decimals + 1u);
        return;
    }
    uint64_t scale = fw_pow10(decimals);
    uint64_t r = (uint64_t)(v * fw_pow10d(decimals) + 0.5);
    fw_put_u64(r / scale);
    if (decimals) {
        fw_putc('.');
        uint64_t frac = r % scale;
        for (uint64_t p = scale / 10u; p; p /= 10u) {
            fw_putc((char)('0' + (int)((frac / p) % 10u)));
        }
    }
}

/* d.ddd...e+XX with `digits` significant digits. */
void fw_put_sci(double v, uint32_t digits)
{
    if (fw_special(v)) {
        return;
    }
    if (digits < 1u) {
        digits = 1u;
    }
    if (digits > 15u) {
        digits = 15u;
    }
    if (v < 0) {
        fw_putc('-');
        v = -v;
    }
    int32_t e = 0;
    if (v != 0.0) {
        while (v >= 10.0) {
            v /= 10.0;
            ++e;
        }
        while (v < 1.0) {
            v *= 10.0;
            --e;
        }
    }
    uint64_t scale = fw_pow10(digits - 1u);
    uint64_t m = (uint64_t)(v * fw_pow10d(digits - 1u) + 0.5);
    if (m >= scale * 10u) {
        m /= 10u;
        ++e;
    }
    fw_put_u64(m / scale);
    if (digits > 1u) {
        fw_putc('.');
        uint64_t frac = m % scale;
        for (uint64_t p = scale / 10u; p; p /= 10u) {
            fw_putc((char)('0' + (int)((frac / p) % 10u)));
        }
    }
    fw_putc('e');
    fw_putc(e < 0 ? '-' : '+');
    if (e < 0) {
        e = -e;
    }
    if (e < 10) {
        fw_putc('0');
    }
    fw_put_u32((uint32_t)e);
}

void fw_put_float(double v, uint32_t digits)
{
    double a = v < 0 ? -v : v;
    if (a == 0.0 || (a >= 1e-3 && a < 1e7)) {
        fw_put_fixed(v, digits);
    } else {
        fw_put_sci(v, digits + 1u);
    }
}

/* Newton's method, for printing error norms without pulling sqrt from libm. */
double fw_sqrt(double x)
{
    if (x != x || x > 1.7976931348623157e308) {
        return x; /* NaN and infinity print as themselves */
    }
    if (!(x > 0.0)) {
        return 0.0;
    }
    double r = x >= 1.0 ? x : 1.0;
    for (int i = 0; i < 200; ++i) {
        double next = 0.5 * (r + x / r);
        if (next >= r) {
            break;
        }
        r = next;
    }
    return r;
}

/* Board support for the ModelBlocks NUCLEO-H723ZG firmware: clocks, caches, cycle counter,
 * USART3 console (the ST-LINK virtual COM port) and printf-free number formatting. */
#ifndef FW_BOARD_H
#define FW_BOARD_H

#include <stdint.h>

#include "fw_config.h"
#include "stm32h723.h"

/* What fw_clock_init achieved. On any time-out it stops where it is, keeps the CPU on a clock
 * that works and says why in `error`; main prints it once the console runs at the new speed. */
typedef struct {
    uint32_t sysclk_hz; /* CPU clock (what the DWT cycle counter counts) */
    uint32_t hclk_hz;   /* AXI/AHB clock */
    uint32_t pclk1_hz;  /* APB1 clock: USART3's kernel clock */
    uint32_t boost;     /* 1 if the CPUFREQ_BOOST option bit allows 550 MHz */
    const char *source; /* "HSE 8 MHz (ST-LINK MCO)", "HSI 64 MHz", ... */
    const char *error;  /* 0 when every step completed */
} fw_clocks;

extern void (*const fw_vectors[])(void); /* fw_startup.c */

void fw_system_init(void);
uint32_t fw_cache_state(void); /* bit 0: I-cache on, bit 1: D-cache on */
void fw_clock_init(fw_clocks *clk);
void fw_uart_init(uint32_t pclk_hz);
void fw_uart_flush(void);
void fw_leds(int green, int red);

void fw_putc(char c);
void fw_puts(const char *s);
void fw_put_u32(uint32_t v);
void fw_put_u64(uint64_t v);
void fw_put_i32(int32_t v);
void fw_put_hex32(uint32_t v);
void fw_put_padded(const char *s, uint32_t width); /* left-aligned, cut to `width` */
void fw_put_u32_right(uint32_t v, uint32_t width);
void fw_put_fixed(double v, uint32_t decimals);
void fw_put_sci(double v, uint32_t digits);
void fw_put_float(double v, uint32_t digits); /* fixed for ordinary magnitudes, else scientific */
double fw_sqrt(double x);

static inline uint32_t fw_cycles(void)
{
    return DWT_CYCCNT;
}

#endif /* FW_BOARD_H */

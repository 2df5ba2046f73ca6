/* Board support for the ModelBlocks NUCLEO-H723ZG firmware. No vendor HAL: the registers are in
 * stm32h723.h and the clock plan in the generated fw_config.h (ModelBlocks' tests recompute the
 * frequencies and the baud rate from that same file). */
#include "fw_board.h"

static int fw_uart_on;

static inline void fw_dsb(void)
{
    __asm__ volatile("dsb 0xF" ::: "memory");
}

static inline void fw_isb(void)
{
    __asm__ volatile("isb 0xF" ::: "memory");
}

/* ---------------------------------------------------------------- caches and cycle counter */

static uint32_t fw_log2_ceil(uint32_t v)
{
    uint32_t bits = 0;
    while ((1u << bits) < v) {
        ++bits;
    }
    return bits;
}

/* Armv7-M ARM B2.2.7: invalidate the whole I-cache (ICIALLU), then enable it (CCR.IC). */
static void fw_icache_enable(void)
{
    if (SCB_CCR & SCB_CCR_IC) {
        return;
    }
    fw_dsb();
    fw_isb();
    SCB_ICIALLU = 0u;
    fw_dsb();
    fw_isb();
    SCB_CCR |= SCB_CCR_IC;
    fw_dsb();
    fw_isb();
}

/* The D-cache powers up with unknown contents: invalidate every line by set/way (DCISW) before
 * enabling it. The geometry is read from CCSIDR for the level-1 data cache (CSSELR = 0); the
 * set field starts at log2(line bytes), the way field sits in the top log2(ways) bits. */
static void fw_dcache_enable(void)
{
    if (SCB_CCR & SCB_CCR_DC) {
        return;
    }
    SCB_CSSELR = 0u;
    fw_dsb();
    uint32_t ccsidr = SCB_CCSIDR;
    uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    uint32_t line_shift = (ccsidr & 7u) + 4u; /* LineSize = log2(words per line) - 2 */
    uint32_t way_bits = fw_log2_ceil(ways);
    for (uint32_t set = 0; set < sets; ++set) {
        for (uint32_t way = 0; way < ways; ++way) {
            uint32_t way_field = way_bits ? way << (32u - way_bits) : 0u;
            SCB_DCISW = way_field | (set << line_shift);
        }
    }
    fw_dsb();
    SCB_CCR |= SCB_CCR_DC;
    fw_dsb();
    fw_isb();
}

/* DEMCR.TRCENA powers the DWT; the Cortex-M7 DWT also needs its CoreSight lock opened (LAR)
 * before software writes reach it; then CYCCNT counts CPU clock cycles. */
static void fw_cycle_counter_enable(void)
{
    DEMCR |= DEMCR_TRCENA;
    DWT_LAR = DWT_LAR_KEY;
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
}

/* The SystemInit equivalent, run from the reset handler before main: the vector table's address,
 * the caches and the cycle counter. The clocks are set in main, once the console can report. */
void fw_system_init(void)
{
    SCB_VTOR = (uint32_t)(uintptr_t)fw_vectors;
    fw_dsb();
    fw_icache_enable();
    fw_dcache_enable();
    fw_cycle_counter_enable();
}

uint32_t fw_cache_state(void)
{
    return ((SCB_CCR & SCB_CCR_IC) ? 1u : 0u) | ((SCB_CCR & SCB_CCR_DC) ? 2u : 0u);
}

/* ---------------------------------------------------------------- clocks */

static int fw_wait(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    for (uint32_t n = 0; n < FW_TIMEOUT_LOOPS; ++n) {
        if ((*reg & mask) == value) {
            return 1;
        }
    }
    return 0;
}

/* The order for raising the frequency (the one ST's HAL follows): supply configuration, voltage
 * scale, oscillator, PLL, bus prescalers, flash wait states, and only then the switch of the
 * system clock to the PLL. */
void fw_clock_init(fw_clocks *clk)
{
    clk->sysclk_hz = FW_HSI_HZ;
    clk->hclk_hz = FW_HSI_HZ;
    clk->pclk1_hz = FW_HSI_HZ;
    clk->boost = (FLASH_OPTSR2_CUR & FLASH_OPTSR2_CPUFREQ_BOOST) != 0u;
    clk->source = "HSI 64 MHz (no PLL)";
    clk->error = 0;

    /* 1. Supply: the NUCLEO-H723ZG powers the core from the internal LDO (the STM32H723 has no
     * SMPS). PWR_CR3 is write-once after power-on; writing LDOEN with SCUEN = 0 locks it. */
    PWR_CR3 = (PWR_CR3 & ~(PWR_CR3_SCUEN | PWR_CR3_LDOEN | PWR_CR3_BYPASS)) | PWR_CR3_LDOEN;
    if (!fw_wait(&PWR_CSR1, PWR_CSR1_ACTVOSRDY, PWR_CSR1_ACTVOSRDY)) {
        clk->error = "PWR_CSR1.ACTVOSRDY never set after selecting the LDO supply";
        return;
    }
    if ((PWR_CR3 & (PWR_CR3_LDOEN | PWR_CR3_BYPASS)) != PWR_CR3_LDOEN) {
        clk->error = "PWR_CR3 was locked in another supply mode since power-on (power-cycle the board)";
        return;
    }

    /* 2. Voltage scale 0, the only scale that allows 520/550 MHz; set before raising the clock. */
    PWR_D3CR = (PWR_D3CR & ~PWR_D3CR_VOS_MSK) | PWR_D3CR_VOS0;
    (void)PWR_D3CR;
    if (!fw_wait(&PWR_D3CR, PWR_D3CR_VOSRDY, PWR_D3CR_VOSRDY)) {
        clk->error = "PWR_D3CR.VOSRDY never set after selecting VOS0";
        return;
    }

    /* 3. Oscillator: the ST-LINK's 8 MHz MCO drives PH0 (HSE bypass, no crystal) on the default
     * NUCLEO-H723ZG; a board with that link cut falls back to the internal 64 MHz HSI. */
    uint32_t src = RCC_PLLCKSELR_PLLSRC_HSE;
    uint32_t divm = FW_PLL1_M_HSE;
    RCC_CR |= RCC_CR_HSEBYP;
    RCC_CR |= RCC_CR_HSEON;
    if (fw_wait(&RCC_CR, RCC_CR_HSERDY, RCC_CR_HSERDY)) {
        clk->source = "HSE 8 MHz bypass (ST-LINK MCO)";
    } else {
        RCC_CR &= ~RCC_CR_HSEON;
        RCC_CR &= ~RCC_CR_HSEBYP;
        src = RCC_PLLCKSELR_PLLSRC_HSI;
        divm = FW_PLL1_M_HSI;
        clk->source = "HSI 64 MHz (no HSE from the ST-LINK)";
        if ((RCC_CR & RCC_CR_HSIDIV_MSK) != 0u || !fw_wait(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY)) {
            clk->error = "neither HSE nor an undivided HSI is available";
            return;
        }
    }

    /* 4. PLL1: 2 MHz reference (range 2..4 MHz, RGE = 1), wide VCO = 2 MHz x N, P = 1. */
    uint32_t n = clk->boost ? FW_PLL1_N_BOOST : FW_PLL1_N;
    RCC_CR &= ~RCC_CR_PLL1ON;
    if (!fw_wait(&RCC_CR, RCC_CR_PLL1RDY, 0u)) {
        clk->error = "PLL1 did not stop";
        return;
    }
    RCC_PLLCKSELR = (RCC_PLLCKSELR & ~(RCC_PLLCKSELR_PLLSRC_MSK | RCC_PLLCKSELR_DIVM1_MSK)) | src |
                    (divm << RCC_PLLCKSELR_DIVM1_POS);
    RCC_PLLCFGR = (RCC_PLLCFGR & ~(RCC_PLLCFGR_PLL1FRACEN | RCC_PLLCFGR_PLL1VCOSEL | RCC_PLLCFGR_PLL1RGE_MSK |
                                   RCC_PLLCFGR_DIVP1EN | RCC_PLLCFGR_DIVQ1EN | RCC_PLLCFGR_DIVR1EN)) |
                  (FW_PLL1_RGE << RCC_PLLCFGR_PLL1RGE_POS) | RCC_PLLCFGR_DIVP1EN;
    RCC_PLL1DIVR = ((n - 1u) << RCC_PLL1DIVR_N1_POS) | ((FW_PLL1_P - 1u) << RCC_PLL1DIVR_P1_POS) |
                   ((FW_PLL1_Q - 1u) << RCC_PLL1DIVR_Q1_POS) | ((FW_PLL1_R - 1u) << RCC_PLL1DIVR_R1_POS);
    RCC_CR |= RCC_CR_PLL1ON;
    if (!fw_wait(&RCC_CR, RCC_CR_PLL1RDY, RCC_CR_PLL1RDY)) {
        clk->error = "PLL1 did not lock (RCC_CR.PLL1RDY)";
        return;
    }

    /* 5. Prescalers first, so that no bus ever exceeds its limit: AXI/AHB = sysclk / 2
     * (<= 275 MHz), every APB = AHB / 2 (<= 137.5 MHz). */
    RCC_D1CFGR = RCC_D1CPRE_DIV1 | RCC_HPRE_DIV2 | RCC_D1PPRE_DIV2;
    RCC_D2CFGR = RCC_D2PPRE1_DIV2 | RCC_D2PPRE2_DIV2;
    RCC_D3CFGR = RCC_D3PPRE_DIV2;
    clk->hclk_hz = FW_HSI_HZ / FW_AHB_DIV;
    clk->pclk1_hz = clk->hclk_hz / FW_APB_DIV;

    /* 6. Flash wait states for the AXI clock in VOS0 (RM0468 "FLASH recommended number of wait
     * states and programming delay"): 3 wait states and WRHIGHFREQ = 3 up to 275 MHz. Raised
     * before the frequency, and read back because the new value must be in force first. */
    uint32_t acr = (FLASH_ACR & ~(FLASH_ACR_LATENCY_MSK | FLASH_ACR_WRHIGHFREQ_MSK)) | FW_FLASH_LATENCY |
                   (FW_FLASH_WRHIGHFREQ << FLASH_ACR_WRHIGHFREQ_POS);
    FLASH_ACR = acr;
    if (!fw_wait(&FLASH_ACR, FLASH_ACR_LATENCY_MSK | FLASH_ACR_WRHIGHFREQ_MSK,
                 acr & (FLASH_ACR_LATENCY_MSK | FLASH_ACR_WRHIGHFREQ_MSK))) {
        clk->error = "FLASH_ACR did not take the new wait states";
        return;
    }

    /* 7. Switch the system clock to PLL1 and wait for the switch status to confirm it. */
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MSK) | RCC_CFGR_SW_PLL1;
    if (!fw_wait(&RCC_CFGR, RCC_CFGR_SWS_MSK, RCC_CFGR_SWS_PLL1)) {
        clk->error = "RCC_CFGR.SWS never reported PLL1";
        return;
    }
    uint32_t ref_hz = (src == RCC_PLLCKSELR_PLLSRC_HSE ? FW_HSE_HZ : FW_HSI_HZ) / divm;
    clk->sysclk_hz = ref_hz * n / FW_PLL1_P;
    clk->hclk_hz = clk->sysclk_hz / FW_AHB_DIV;
    clk->pclk1_hz = clk->hclk_hz / FW_APB_DIV;
}

/* ---------------------------------------------------------------- USART3 console */

/* USART3 on PD8 (TX) / PD9 (RX), alternate function 7 (DS13313 alternate-function table): the
 * NUCLEO-H723ZG wires these pins to the ST-LINK virtual COM port (UM2407). 8 data bits, no
 * parity, 1 stop bit, oversampling by 16: BRR = fck / baud, rounded to the nearest integer. */
void fw_uart_init(uint32_t pclk_hz)
{
    RCC_AHB4ENR |= RCC_AHB4ENR_GPIODEN;
    RCC_APB1LENR |= RCC_APB1LENR_USART3EN;
    (void)RCC_APB1LENR; /* read back: the enable must land before the first USART access */
    RCC_D2CCIP2R &= ~RCC_D2CCIP2R_USART28SEL_MSK;
    if (fw_uart_on) {
        fw_uart_flush();
    }
    USART3_CR1 = 0u; /* UE = 0: BRR can only change while the USART is disabled */
    USART3_CR2 = 0u;
    USART3_CR3 = 0u;
    USART3_PRESC = 0u;
    USART3_BRR = (pclk_hz + FW_UART_BAUD / 2u) / FW_UART_BAUD;
    USART3_CR1 = USART_CR1_TE | USART_CR1_RE | USART_CR1_UE;
    /* The pins last: the enabled transmitter already holds the line idle-high. */
    GPIO_AFRH(FW_GPIOD_BASE) = (GPIO_AFRH(FW_GPIOD_BASE) & ~0xFFu) | (7u << 0) | (7u << 4);
    GPIO_OSPEEDR(FW_GPIOD_BASE) = (GPIO_OSPEEDR(FW_GPIOD_BASE) & ~(0xFu << 16)) | (1u << 16) | (1u << 18);
    GPIO_PUPDR(FW_GPIOD_BASE) = (GPIO_PUPDR(FW_GPIOD_BASE) & ~(0xFu << 16)) | (1u << 18); /* RX pull-up */
    GPIO_MODER(FW_GPIOD_BASE) = (GPIO_MODER(FW_GPIOD_BASE) & ~(0xFu << 16)) | (2u << 16) | (2u << 18);
    fw_uart_on = 1;
}

void fw_uart_flush(void)
{
    for (uint32_t n = 0; n < FW_TIMEOUT_LOOPS && !(USART3_ISR & USART_ISR_TC); ++n) {
    }
}

void fw_putc(char c)
{
    if (!fw_uart_on) {
        return;
    }
    if (c == '\n') {
        fw_putc('\r'); /* terminals want CR LF */
    }
    for (uint32_t n = 0; n < FW_TIMEOUT_LOOPS && !(USART3_ISR & USART_ISR_TXE); ++n) {
    }
    USART3_TDR = (uint8_t)c;
}

/* LD1 (green, PB0) and LD3 (red, PB14) of the NUCLEO-H723ZG. */
void fw_leds(int green, int red)
{
    RCC_AHB4ENR |= RCC_AHB4ENR_GPIOBEN;
    (void)RCC_AHB4ENR;
    GPIO_MODER(FW_GPIOB_BASE) = (GPIO_MODER(FW_GPIOB_BASE) & ~((3u << 0) | (3u << 28))) | (1u << 0) | (1u << 28);
    GPIO_BSRR(FW_GPIOB_BASE) = (green ? (1u << 0) : (1u << 16)) | (red ? (1u << 14) : (1u << 30));
}

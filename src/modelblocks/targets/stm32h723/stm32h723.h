/* STM32H723 (and Cortex-M7 core) registers used by the ModelBlocks firmware. Written for this
 * project, not taken from a vendor header: every address and bit position below was checked
 * against the public CMSIS device header stm32h723xx.h (STMicroelectronics/cmsis_device_h7);
 * registers are named as in RM0468 (the STM32H723/733/725/735/730 reference manual) so that the
 * manual is easy to search. Core registers follow the Armv7-M Architecture Reference Manual
 * (ARM DDI 0403, "B3.2 System Control Space", "C1.8 Data Watchpoint and Trace unit") and CMSIS
 * core_cm7.h. */
#ifndef FW_STM32H723_H
#define FW_STM32H723_H

#include <stdint.h>

#define FW_REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* ---- Memory map (RM0468 "Memory organization"; CMSIS D1_DTCMRAM_BASE etc.) ---- */
#define FW_FLASH_BASE 0x08000000u
#define FW_DTCM_BASE 0x20000000u
#define FW_AXISRAM_BASE 0x24000000u

/* ---- RCC, base 0x58024400 (D3 AHB4 + 0x4400) ---- */
#define FW_RCC_BASE 0x58024400u
#define RCC_CR FW_REG32(FW_RCC_BASE + 0x00u)
#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 2)
#define RCC_CR_HSIDIV_MSK (3u << 3) /* 00: HSI = 64 MHz undivided (the reset value) */
#define RCC_CR_HSEON (1u << 16)
#define RCC_CR_HSERDY (1u << 17)
#define RCC_CR_HSEBYP (1u << 18)
#define RCC_CR_PLL1ON (1u << 24)
#define RCC_CR_PLL1RDY (1u << 25)
#define RCC_CFGR FW_REG32(FW_RCC_BASE + 0x10u)
#define RCC_CFGR_SW_MSK (7u << 0)
#define RCC_CFGR_SW_PLL1 (3u << 0)
#define RCC_CFGR_SWS_MSK (7u << 3)
#define RCC_CFGR_SWS_PLL1 (3u << 3)
/* Domain prescalers: RCC_D1CFGR (D1CPRE 11:8, HPRE 3:0, D1PPRE 6:4), RCC_D2CFGR (D2PPRE1 6:4,
 * D2PPRE2 10:8), RCC_D3CFGR (D3PPRE 6:4). Encodings: HPRE/D1CPRE 0xxx = /1, 1000 = /2;
 * the APB prescalers 0xx = /1, 100 = /2. */
#define RCC_D1CFGR FW_REG32(FW_RCC_BASE + 0x18u)
#define RCC_D2CFGR FW_REG32(FW_RCC_BASE + 0x1Cu)
#define RCC_D3CFGR FW_REG32(FW_RCC_BASE + 0x20u)
#define RCC_HPRE_DIV2 (8u << 0)
#define RCC_D1CPRE_DIV1 (0u << 8)
#define RCC_D1PPRE_DIV2 (4u << 4)
#define RCC_D2PPRE1_DIV2 (4u << 4)
#define RCC_D2PPRE2_DIV2 (4u << 8)
#define RCC_D3PPRE_DIV2 (4u << 4)
/* RCC_PLLCKSELR: PLLSRC 1:0 (00 HSI, 10 HSE), DIVM1 9:4 (the divider itself, 0 = PLL off). */
#define RCC_PLLCKSELR FW_REG32(FW_RCC_BASE + 0x28u)
#define RCC_PLLCKSELR_PLLSRC_MSK (3u << 0)
#define RCC_PLLCKSELR_PLLSRC_HSI (0u << 0)
#define RCC_PLLCKSELR_PLLSRC_HSE (2u << 0)
#define RCC_PLLCKSELR_DIVM1_POS 4u
#define RCC_PLLCKSELR_DIVM1_MSK (0x3Fu << 4)
/* RCC_PLLCFGR: PLL1FRACEN 0, PLL1VCOSEL 1 (0 = wide VCO), PLL1RGE 3:2, DIVP1EN 16, DIVQ1EN 17,
 * DIVR1EN 18. */
#define RCC_PLLCFGR FW_REG32(FW_RCC_BASE + 0x2Cu)
#define RCC_PLLCFGR_PLL1FRACEN (1u << 0)
#define RCC_PLLCFGR_PLL1VCOSEL (1u << 1)
#define RCC_PLLCFGR_PLL1RGE_POS 2u
#define RCC_PLLCFGR_PLL1RGE_MSK (3u << 2)
#define RCC_PLLCFGR_DIVP1EN (1u << 16)
#define RCC_PLLCFGR_DIVQ1EN (1u << 17)
#define RCC_PLLCFGR_DIVR1EN (1u << 18)
/* RCC_PLL1DIVR: each field holds (divider - 1): N1 8:0, P1 15:9, Q1 22:16, R1 30:24. */
#define RCC_PLL1DIVR FW_REG32(FW_RCC_BASE + 0x30u)
#define RCC_PLL1DIVR_N1_POS 0u
#define RCC_PLL1DIVR_P1_POS 9u
#define RCC_PLL1DIVR_Q1_POS 16u
#define RCC_PLL1DIVR_R1_POS 24u
/* RCC_D2CCIP2R USART234578SEL 2:0: kernel clock of USART2/3/4/5/7/8, 000 = rcc_pclk1. */
#define RCC_D2CCIP2R FW_REG32(FW_RCC_BASE + 0x54u)
#define RCC_D2CCIP2R_USART28SEL_MSK (7u << 0)
#define RCC_AHB4ENR FW_REG32(FW_RCC_BASE + 0xE0u)
#define RCC_AHB4ENR_GPIOBEN (1u << 1)
#define RCC_AHB4ENR_GPIODEN (1u << 3)
#define RCC_APB1LENR FW_REG32(FW_RCC_BASE + 0xE8u)
#define RCC_APB1LENR_USART3EN (1u << 18)

/* ---- PWR, base 0x58024800 ---- */
#define FW_PWR_BASE 0x58024800u
/* PWR_CSR1: ACTVOSRDY 13 (supply and VOS levels valid). */
#define PWR_CSR1 FW_REG32(FW_PWR_BASE + 0x04u)
#define PWR_CSR1_ACTVOSRDY (1u << 13)
/* PWR_CR3 (STM32H723: no SMPS): BYPASS 0, LDOEN 1, SCUEN 2. The supply bits are write-once after
 * power-on: the first write with SCUEN = 0 locks the configuration. */
#define PWR_CR3 FW_REG32(FW_PWR_BASE + 0x0Cu)
#define PWR_CR3_BYPASS (1u << 0)
#define PWR_CR3_LDOEN (1u << 1)
#define PWR_CR3_SCUEN (1u << 2)
/* PWR_D3CR: VOSRDY 13, VOS 15:14. On STM32H72x/73x 00 = VOS0 (highest), 11 = VOS1, 10 = VOS2,
 * 01 = VOS3 (the reset value). (STM32H7A3 encodes VOS0 as 11 in PWR_SRDCR: do not mix them up.) */
#define PWR_D3CR FW_REG32(FW_PWR_BASE + 0x18u)
#define PWR_D3CR_VOSRDY (1u << 13)
#define PWR_D3CR_VOS_MSK (3u << 14)
#define PWR_D3CR_VOS0 (0u << 14)

/* ---- Embedded flash interface, base 0x52002000 (D1 AHB3 + 0x2000) ---- */
#define FW_FLASHIF_BASE 0x52002000u
/* FLASH_ACR: LATENCY 3:0 (wait states), WRHIGHFREQ 5:4 (programming delay). */
#define FLASH_ACR FW_REG32(FW_FLASHIF_BASE + 0x00u)
#define FLASH_ACR_LATENCY_MSK (0xFu << 0)
#define FLASH_ACR_WRHIGHFREQ_POS 4u
#define FLASH_ACR_WRHIGHFREQ_MSK (3u << 4)
/* FLASH_OPTSR2_CUR: TCM_AXI_SHARED 1:0, CPUFREQ_BOOST 2 (the option byte that allows 550 MHz). */
#define FLASH_OPTSR2_CUR FW_REG32(FW_FLASHIF_BASE + 0x70u)
#define FLASH_OPTSR2_CPUFREQ_BOOST (1u << 2)

/* ---- GPIO ports B and D (D3 AHB4 + 0x0400 / 0x0C00) ---- */
#define FW_GPIOB_BASE 0x58020400u
#define FW_GPIOD_BASE 0x58020C00u
#define GPIO_MODER(base) FW_REG32((base) + 0x00u)
#define GPIO_OSPEEDR(base) FW_REG32((base) + 0x08u)
#define GPIO_PUPDR(base) FW_REG32((base) + 0x0Cu)
#define GPIO_BSRR(base) FW_REG32((base) + 0x18u)
#define GPIO_AFRH(base) FW_REG32((base) + 0x24u) /* AFR[1]: pins 8..15, 4 bits each */

/* ---- USART3, base 0x40004800 (D2 APB1) ---- */
#define FW_USART3_BASE 0x40004800u
#define USART3_CR1 FW_REG32(FW_USART3_BASE + 0x00u)
#define USART_CR1_UE (1u << 0)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART3_CR2 FW_REG32(FW_USART3_BASE + 0x04u)
#define USART3_CR3 FW_REG32(FW_USART3_BASE + 0x08u)
#define USART3_BRR FW_REG32(FW_USART3_BASE + 0x0Cu)
#define USART3_ISR FW_REG32(FW_USART3_BASE + 0x1Cu)
#define USART_ISR_TC (1u << 6)
#define USART_ISR_TXE (1u << 7) /* TXE_TXFNF: the transmit data register (or FIFO) has room */
#define USART3_TDR FW_REG32(FW_USART3_BASE + 0x28u)
#define USART3_PRESC FW_REG32(FW_USART3_BASE + 0x2Cu)

/* ---- Cortex-M7 System Control Block (Armv7-M ARM B3.2.2, B3.2.8, B2.2.7 cache maintenance) ---- */
#define SCB_VTOR FW_REG32(0xE000ED08u)
#define SCB_CCR FW_REG32(0xE000ED14u)
#define SCB_CCR_DC (1u << 16)
#define SCB_CCR_IC (1u << 17)
#define SCB_CFSR FW_REG32(0xE000ED28u)
#define SCB_HFSR FW_REG32(0xE000ED2Cu)
#define SCB_CLIDR FW_REG32(0xE000ED78u)
#define SCB_CCSIDR FW_REG32(0xE000ED80u) /* LineSize 2:0, Associativity 12:3, NumSets 27:13 */
#define SCB_CSSELR FW_REG32(0xE000ED84u) /* 0 selects the level-1 data cache */
#define SCB_CPACR FW_REG32(0xE000ED88u)
#define SCB_ICIALLU FW_REG32(0xE000EF50u) /* write: invalidate the whole instruction cache */
#define SCB_DCISW FW_REG32(0xE000EF60u) /* write: invalidate one data-cache line by set/way */

/* ---- Debug: DEMCR (Armv7-M C1.6.5) and the DWT cycle counter (C1.8) ---- */
#define DEMCR FW_REG32(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL FW_REG32(0xE0001000u)
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_CYCCNT FW_REG32(0xE0001004u)
/* CoreSight Lock Access Register: the Cortex-M7's DWT ignores software writes until unlocked. */
#define DWT_LAR FW_REG32(0xE0001FB0u)
#define DWT_LAR_KEY 0xC5ACCE55u

/* Device interrupt count: IRQ 0 (WWDG) .. 162 (TIM24), stm32h723xx.h IRQn_Type / RM0468 NVIC table. */
#define FW_IRQ_COUNT 163

#endif /* FW_STM32H723_H */

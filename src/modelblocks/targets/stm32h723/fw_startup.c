/* Start-up for the STM32H723: the vector table (the Cortex-M7's 16 exception slots and the
 * device's 163 interrupts, IRQ 0 WWDG .. IRQ 162 TIM24, every one on the default handler), the
 * reset handler and the fault report. */
#include <stdint.h>

#include "fw_board.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _saxibss, _eaxibss, _estack;
int main(void);
void fw_reset_handler(void);
void fw_reset_c(void);
void fw_default_handler(void);

/* Slot 0 is the initial stack pointer, slot 1 the reset vector; the Armv7-M reserved slots
 * (7-10, 13) stay 0. The table sits at 0x08000000, where the boot address option points. */
#define FW_DH fw_default_handler
#define FW_DH4 FW_DH, FW_DH, FW_DH, FW_DH
#define FW_DH16 FW_DH4, FW_DH4, FW_DH4, FW_DH4

__attribute__((section(".isr_vector"), used)) void (*const fw_vectors[])(void) = {
    (void (*)(void))(uintptr_t)&_estack,
    fw_reset_handler,
    fw_default_handler, /* NMI */
    fw_default_handler, /* HardFault */
    fw_default_handler, /* MemManage */
    fw_default_handler, /* BusFault */
    fw_default_handler, /* UsageFault */
    0, 0, 0, 0,
    fw_default_handler, /* SVCall */
    fw_default_handler, /* DebugMonitor */
    0,
    fw_default_handler, /* PendSV */
    fw_default_handler, /* SysTick */
    /* IRQ 0..159 */
    FW_DH16, FW_DH16, FW_DH16, FW_DH16, FW_DH16, FW_DH16, FW_DH16, FW_DH16, FW_DH16, FW_DH16,
    /* IRQ 160..162 */
    FW_DH, FW_DH, FW_DH,
};

/* Compile-time check that the table has exactly 16 + 163 entries (C99 has no static_assert). */
typedef char fw_vector_count_check[sizeof fw_vectors / sizeof fw_vectors[0] == 16 + FW_IRQ_COUNT ? 1 : -1];

/* The FPU must be on (CPACR CP10/CP11 full access, Armv7-M ARM B3.2.20) before the first
 * floating-point instruction, and the compiler may use FP registers in any C function, even to
 * copy memory: so this part is assembly, and C starts only after the DSB/ISB. */
__attribute__((naked)) void fw_reset_handler(void)
{
    __asm__ volatile(
        "ldr r0, =0xE000ED88\n"
        "ldr r1, [r0]\n"
        "orr r1, r1, #0xF00000\n"
        "str r1, [r0]\n"
        "dsb\n"
        "isb\n"
        "b fw_reset_c\n");
}

void fw_reset_c(void)
{
    for (uint32_t *src = &_sidata, *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0u;
    }
    for (uint32_t *dst = &_saxibss; dst < &_eaxibss;) {
        *dst++ = 0u;
    }
    fw_system_init();
    (void)main();
    for (;;) {
        __asm__ volatile("wfi");
    }
}

/* Any fault or unexpected interrupt: name it on the console (CFSR/HFSR decode the fault class,
 * Armv7-M ARM B3.2.15/B3.2.16), light the red LED and stop. */
void fw_default_handler(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    fw_puts("\n*** fault or unexpected interrupt: IPSR=");
    fw_put_u32(ipsr & 0x1FFu);
    fw_puts(" CFSR=");
    fw_put_hex32(SCB_CFSR);
    fw_puts(" HFSR=");
    fw_put_hex32(SCB_HFSR);
    fw_puts("\n");
    fw_uart_flush();
    fw_leds(0, 1);
    for (;;) {
    }
}

/* Bare-metal start-up for the QEMU MPS2/MPS3 boards: vector table, reset handler (FPU on, .data
 * copied from flash, .bss zeroed) and a fault handler that reports through semihosting. */
#include <stdint.h>

#include "sim_semihost.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void Reset_Handler(void);
void sim_reset_c(void);
void sim_fault_handler(void);

__attribute__((section(".isr_vector"), used)) void (*const sim_vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&_estack, Reset_Handler,
    sim_fault_handler, /* NMI */
    sim_fault_handler, /* HardFault */
    sim_fault_handler, /* MemManage */
    sim_fault_handler, /* BusFault */
    sim_fault_handler, /* UsageFault */
    sim_fault_handler, /* SecureFault (Armv8-M) */
    0, 0, 0,
    sim_fault_handler, /* SVCall */
    sim_fault_handler, /* DebugMonitor */
    0,
    sim_fault_handler, /* PendSV */
    sim_fault_handler, /* SysTick */
};

/* The FPU must be enabled (CPACR CP10/CP11 full access) before the first floating-point
 * instruction, and the compiler may use FP registers in any C function: so this part is asm. */
__attribute__((naked)) void Reset_Handler(void)
{
    __asm__ volatile(
        "ldr r0, =0xE000ED88\n"
        "ldr r1, [r0]\n"
        "orr r1, r1, #0xF00000\n"
        "str r1, [r0]\n"
        "dsb\n"
        "isb\n"
        "b sim_reset_c\n");
}

void sim_reset_c(void)
{
    for (uint32_t *src = &_sidata, *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    sh_exit(main());
}

static void put_hex(char *at, uint32_t value)
{
    for (int i = 7; i >= 0; --i) {
        at[7 - i] = "0123456789ABCDEF"[(value >> (4 * i)) & 0xFu];
    }
}

void sim_fault_handler(void)
{
    /* CFSR and HFSR name the fault class (Armv7-M/Armv8-M ARM, B3.2.15/B3.2.16). */
    char text[] = "modelblocks: CPU fault, CFSR=0x00000000 HFSR=0x00000000 IPSR=0x00000000\n";
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    put_hex(text + 31, *(volatile uint32_t *)0xE000ED28u);
    put_hex(text + 47, *(volatile uint32_t *)0xE000ED2Cu);
    put_hex(text + 63, ipsr);
    sh_puts(text);
    sh_exit(70);
}

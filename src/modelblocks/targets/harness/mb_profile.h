/* Per-layer marks for the simulation harness: the instruction-counting QEMU plugin snapshots its
 * counter each time sim_mark() is entered, so each layer's count is the difference between
 * consecutive marks (minus the measured cost of one mark). */
#ifndef MB_PROFILE_H
#define MB_PROFILE_H

void sim_mark(void);

#define MB_PROFILE_BEGIN(id, name) ((void)0)
#define MB_PROFILE_END(id, name) sim_mark()

#endif /* MB_PROFILE_H */

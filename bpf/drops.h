/* The size of every BPF object's drops array (bpf/drops.bpf.h), shared by
 * both sides. No includes. */
#ifndef REFLEX_BPF_DROPS_H
#define REFLEX_BPF_DROPS_H

#define REFLEX_DROPS_MAX 8

#endif

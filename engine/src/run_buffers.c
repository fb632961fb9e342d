/* run_buffers.c — what a run leaves in the simulation besides its state: the recordings and
 * snapshots, forgotten when the next run starts or the simulation is freed. */
#include <stdlib.h>

#include "sim_impl.h"

/* Forgets the last run's recordings and snapshots. The recorders' buffers stay for the next
 * run (a sleep-phase run records tens of MB: fresh memory every run cost page faults);
 * ap_sim_free releases them. */
void apx_sim_free_run_buffers(ap_sim *s) {
    for (int k = 0; k < s->run.n_rec; k++)
        s->run.rec[k].n = 0;
    s->run.n_rec = 0;
    for (int k = 0; k < s->run.n_snap; k++)
        free(s->run.snap[k].copy);
    free(s->run.snap);
    s->run.snap = NULL;
    s->run.n_snap = 0;
}

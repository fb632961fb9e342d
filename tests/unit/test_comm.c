/* test_comm.c — apical/comm.h in one process (not started by an MPI launcher): rank 0 of 1, the
 * sum over ranks and the reductions (sum, max, min) leave their vector as it is, errors for NULL
 * arguments and an unknown reduction, finish returns the
 * status. The sums over several ranks are tested under mpirun (tests/mpi/test_mpi.lua: two
 * runs bitwise equal, N ranks equal to one process). */
#include <stdlib.h>

#include "apical/comm.h"
#include "apical/error.h"
#include "check.h"

static void test_one_process(void) {
    CHECK_OK(ap_comm_init());
    CHECK(ap_comm_rank() == 0);
    CHECK(ap_comm_size() == 1);
    double x[3] = {1.5, -2.0, 3.25};
    CHECK_OK(ap_comm_sum(x, 3));
    CHECK(x[0] == 1.5 && x[1] == -2.0 && x[2] == 3.25);
    CHECK_OK(ap_comm_sum(NULL, 0));
    CHECK_FAILS(ap_comm_sum(NULL, 3), AP_EINVAL, "NULL");
    CHECK_FAILS(ap_comm_sum_grad(NULL), AP_EINVAL, "NULL");
    double m[2] = {-0.5, 7.0};
    for (int op = AP_COMM_SUM; op <= AP_COMM_MIN; op++) {
        CHECK_OK(ap_comm_reduce(m, 2, (ap_comm_op)op));
        CHECK(m[0] == -0.5 && m[1] == 7.0);
    }
    CHECK_FAILS(ap_comm_reduce(NULL, 2, AP_COMM_SUM), AP_EINVAL, "NULL");
    CHECK_FAILS(ap_comm_reduce(m, 2, (ap_comm_op)7), AP_EINVAL, "unknown op 7");
    CHECK(ap_comm_has_mpi() == 0 || ap_comm_has_mpi() == 1);
    CHECK(ap_comm_finish(0) == 0);
    CHECK(ap_comm_finish(3) == 3); /* nothing was started: just the status */
}

int main(void) {
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMI_SIZE");
    unsetenv("PMIX_RANK");
    RUN(test_one_process);
    return CHECK_DONE();
}

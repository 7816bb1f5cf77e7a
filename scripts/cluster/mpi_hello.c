/* MPI hello of the test cluster (smoke.sh, probe.sh). Every rank prints
 *   rank R size S host H netns N sum X
 * where H is gethostname() (the node's UTS namespace), N the inode of its network namespace and
 * X the MPI_Allreduce sum of all ranks (must be S*(S-1)/2). Options for the failure probes:
 *   --exit R C         rank R exits with status C after MPI_Finalize (the others with 0)
 *   --exit-early R C   rank R calls exit(C) before MPI_Finalize
 *   --sleep SEC        every rank sleeps SEC seconds after the Allreduce (then finalizes)
 *   --log DIR          SIGINT/SIGTERM/SIGHUP/SIGUSR1/2 are logged to DIR/rank.R (ms timestamps)
 *   --stay             ...and ignored after logging (to see whether SIGKILL follows)
 */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

static int log_fd = -1, stay = 0;

static void on_signal(int sig) {
    char buf[96];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int n = snprintf(buf, sizeof buf, "%lld.%03ld signal %d (%s)\n", (long long)ts.tv_sec,
                     ts.tv_nsec / 1000000, sig, strsignal(sig));
    if (log_fd >= 0 && n > 0) (void)!write(log_fd, buf, (size_t)n);
    if (!stay) _exit(128 + sig);
}

int main(int argc, char **argv) {
    int exit_rank = -1, exit_code = 0, early = 0, sleep_s = 0;
    const char *log_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--exit") || !strcmp(argv[i], "--exit-early")) && i + 2 < argc) {
            early = !strcmp(argv[i], "--exit-early");
            exit_rank = atoi(argv[i + 1]);
            exit_code = atoi(argv[i + 2]);
            i += 2;
        } else if (!strcmp(argv[i], "--sleep") && i + 1 < argc) {
            sleep_s = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--log") && i + 1 < argc) {
            log_dir = argv[++i];
        } else if (!strcmp(argv[i], "--stay")) {
            stay = 1;
        }
    }
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (log_dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/rank.%d", log_dir, rank);
        log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};
        for (unsigned k = 0; k < sizeof sigs / sizeof *sigs; k++) signal(sigs[k], on_signal);
    }
    char host[256] = "?";
    gethostname(host, sizeof host);
    struct stat st;
    unsigned long netns = stat("/proc/self/ns/net", &st) == 0 ? (unsigned long)st.st_ino : 0;
    long mine = rank, sum = -1;
    MPI_Allreduce(&mine, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    printf("rank %d size %d host %s netns %lu sum %ld pid %d\n", rank, size, host, netns, sum,
           (int)getpid());
    fflush(stdout);
    for (time_t end = time(NULL) + sleep_s; time(NULL) < end;) sleep(1); /* a logged signal cuts sleep() short */
    if (rank == exit_rank && early) exit(exit_code);
    MPI_Finalize();
    return rank == exit_rank ? exit_code : 0;
}

// The CPU floor of one HTTP(S) check on this machine's OpenSSL, without libcurl, Asio or the
// probe: a blocking client that connects, does a full TLS 1.3 handshake (session cache off, the
// peer verified against a CA file), sends GET / with Connection: close, reads to the end and
// closes, N times in a row. Prints the process's CPU (user + system) per check. Used to tell the
// probe's overhead from what any OpenSSL 3.0 client pays (docs/benchmarks.md, "Profile").
//
//   cc -O2 bench/tls_floor.c -o /tmp/tls_floor -lssl -lcrypto
//   taskset -c 1 /tmp/tls_floor PORT TLS(0|1) SHARED_CTX(0|1) CA_FILE N
//
// against the lab's nginx (regions/lab/targets.py start DIR; ports and CA file in DIR/env.json).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static double cpu_us(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_utime.tv_sec * 1e6 + r.ru_utime.tv_usec + r.ru_stime.tv_sec * 1e6 + r.ru_stime.tv_usec;
}

static SSL_CTX* client_ctx(X509_STORE* store) {
  SSL_CTX* c = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);  // full handshakes only
  SSL_CTX_set1_cert_store(c, store);
  return c;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s PORT TLS SHARED_CTX CA_FILE N\n", argv[0]);
    return 2;
  }
  const int port = atoi(argv[1]), tls = atoi(argv[2]), shared = atoi(argv[3]), n = atoi(argv[5]);
  X509_STORE* store = X509_STORE_new();
  if (X509_STORE_load_file(store, argv[4]) != 1) return 2;
  SSL_CTX* shared_ctx = client_ctx(store);
  const char* req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  char buf[16384];
  int ok = 0;
  const double start = cpu_us();
  for (int i = 0; i < n; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) return 1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int got = 0, len;
    if (tls) {
      SSL_CTX* c = shared ? shared_ctx : client_ctx(store);
      SSL* s = SSL_new(c);
      SSL_set_fd(s, fd);
      SSL_set1_host(s, "127.0.0.1");
      if (SSL_connect(s) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
      }
      SSL_write(s, req, (int)strlen(req));
      while ((len = SSL_read(s, buf, sizeof buf)) > 0) got += len;
      SSL_free(s);
      if (!shared) SSL_CTX_free(c);
    } else {
      if (write(fd, req, strlen(req)) < 0) return 1;
      while ((len = (int)read(fd, buf, sizeof buf)) > 0) got += len;
    }
    if (got > 12) ok++;
    close(fd);
  }
  printf("tls=%d shared_ctx=%d: %.0f us CPU/check (%d of %d answered)\n", tls, shared,
         (cpu_us() - start) / n, ok, n);
  return 0;
}

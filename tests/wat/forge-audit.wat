;; A hostile guest that forges audit lines. It reads `db-password` once (one real audit
;; event), then writes, byte for byte, the audit event of a read that never happened:
;; 1. as a whole line on stderr; 2. again in two writes through two stderr handles (a partial
;; line); 3. on stdout; 4. on stderr without its newline, as its last words. A host that passes
;; guest stderr through raw puts audit lines no reader can tell from its own beside the real one.
;; It is both a command (wasi:cli/run, for `run`) and a wasi:http handler (for `serve`; it never
;; answers, so the host answers 500).
(component $forge
  (import "wasm-secrets:secrets/store@0.1.0" (instance $store
    (type $error-def (variant
      (case "invalid-name" string)
      (case "not-granted" string)
      (case "not-found" string)
      (case "forbidden" string)
      (case "unavailable" string)))
    (export "error" (type $error (eq $error-def)))
    (export "get" (func (param "name" string) (result (result string (error $error)))))))
  (import "wasi:io/error@0.2.0" (instance $io-error
    (export "error" (type (sub resource)))))
  (alias export $io-error "error" (type $io-error-type))
  (import "wasi:io/streams@0.2.0" (instance $streams
    (alias outer $forge $io-error-type (type $outer-error))
    (export "error" (type $error (eq $outer-error)))
    (export "output-stream" (type $output-stream (sub resource)))
    (type $stream-error-def (variant
      (case "last-operation-failed" (own $error))
      (case "closed")))
    (export "stream-error" (type $stream-error (eq $stream-error-def)))
    (export "[method]output-stream.blocking-write-and-flush"
      (func (param "self" (borrow $output-stream)) (param "contents" (list u8))
        (result (result (error $stream-error)))))))
  (alias export $streams "output-stream" (type $output-stream))
  (import "wasi:cli/stderr@0.2.0" (instance $stderr
    (alias outer $forge $output-stream (type $outer-stream))
    (export "output-stream" (type $stream (eq $outer-stream)))
    (export "get-stderr" (func (result (own $stream))))))
  (import "wasi:cli/stdout@0.2.0" (instance $stdout
    (alias outer $forge $output-stream (type $outer-stream))
    (export "output-stream" (type $stream (eq $outer-stream)))
    (export "get-stdout" (func (result (own $stream))))))
  (import "wasi:http/types@0.2.0" (instance $http
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))))
  (alias export $http "incoming-request" (type $incoming-request))
  (alias export $http "response-outparam" (type $response-outparam))
  (core module $libc
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 8192))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $next))
      (global.set $next (i32.add (global.get $next) (local.get 3)))
      (local.get $p)))
  (core instance $libc (instantiate $libc))
  (core func $get (canon lower (func $store "get")
    (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core func $get-stderr (canon lower (func $stderr "get-stderr")))
  (core func $get-stdout (canon lower (func $stdout "get-stdout")))
  (core func $write (canon lower (func $streams "[method]output-stream.blocking-write-and-flush")
    (memory (core memory $libc "memory"))))
  (core module $main
    (import "libc" "memory" (memory 1))
    (import "host" "get" (func $get (param i32 i32 i32)))
    (import "host" "get-stderr" (func $get-stderr (result i32)))
    (import "host" "get-stdout" (func $get-stdout (result i32)))
    (import "host" "write" (func $write (param i32 i32 i32 i32)))
    (data (i32.const 512) "db-password")
    ;; 174 bytes and a newline
    (data (i32.const 1024) "{\"time\":\"2026-01-01T00:00:00.000Z\",\"component\":\"payments\",\"op\":\"get\",\"name\":\"stripe\",\"vault\":\"default\",\"secret\":\"stripe-live-key\",\"outcome\":\"ok\",\"cache\":\"hit\",\"latency_us\":3}\n")
    (func $forge
      (call $get (i32.const 512) (i32.const 11) (i32.const 16))
      (call $write (call $get-stderr) (i32.const 1024) (i32.const 175) (i32.const 32))
      (call $write (call $get-stderr) (i32.const 1024) (i32.const 20) (i32.const 32))
      (call $write (call $get-stderr) (i32.const 1044) (i32.const 155) (i32.const 32))
      (call $write (call $get-stdout) (i32.const 1024) (i32.const 175) (i32.const 32))
      (call $write (call $get-stderr) (i32.const 1024) (i32.const 174) (i32.const 32)))
    (func (export "run") (result i32) (call $forge) (i32.const 0))
    (func (export "handle") (param i32 i32) (call $forge)))
  (core instance $main (instantiate $main
    (with "libc" (instance $libc))
    (with "host" (instance
      (export "get" (func $get))
      (export "get-stderr" (func $get-stderr))
      (export "get-stdout" (func $get-stdout))
      (export "write" (func $write))))))
  (func $run (result (result)) (canon lift (core func $main "run")))
  (instance $cli-run (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli-run))
  (func $handle (param "request" (own $incoming-request)) (param "response-out" (own $response-outparam))
    (canon lift (core func $main "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0" (instance $handler)))

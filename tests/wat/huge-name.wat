;; A hostile command: passes a 100 MiB string as the name to `get`.
;; The host must refuse it before copying it (the per-call byte cap).
(component
  (import "wasm-secrets:secrets/store@0.1.0" (instance $store
    (type $error-def (variant
      (case "invalid-name" string)
      (case "not-granted" string)
      (case "not-found" string)
      (case "forbidden" string)
      (case "unavailable" string)))
    (export "error" (type $error (eq $error-def)))
    (export "get" (func (param "name" string) (result (result string (error $error)))))))
  (core module $libc
    ;; 1700 pages = 106 MiB, enough to hold the name.
    (memory (export "memory") 1700)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $next))
      (global.set $next (i32.add (global.get $next) (local.get 3)))
      (local.get $p)))
  (core instance $libc (instantiate $libc))
  (core func $get (canon lower (func $store "get")
    (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core module $main
    (import "host" "get" (func $get (param i32 i32 i32)))
    (func (export "run") (result i32)
      ;; name: 100 MiB of zero bytes at address 4096; result area at 16
      (call $get (i32.const 4096) (i32.const 104857600) (i32.const 16))
      (i32.const 0)))
  (core instance $main (instantiate $main
    (with "host" (instance (export "get" (func $get))))))
  (func $run (result (result)) (canon lift (core func $main "run")))
  (instance $cli-run (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli-run)))

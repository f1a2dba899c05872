;; A hostile command: passes a 100 MiB "digest" to `keys.sign`.
;; The host must refuse it before copying it (the per-call byte cap), as for a huge name.
(component
  (import "wasm-secrets:secrets/keys@0.1.0" (instance $keys
    (type $key-error-def (variant
      (case "invalid-name" string)
      (case "not-granted" string)
      (case "not-found" string)
      (case "forbidden" string)
      (case "unavailable" string)
      (case "invalid-argument" string)))
    (export "key-error" (type $key-error (eq $key-error-def)))
    (type $alg-def (enum "rs256" "rs384" "rs512" "ps256" "ps384" "ps512" "es256" "es384" "es512" "es256k"))
    (export "signature-algorithm" (type $alg (eq $alg-def)))
    (export "sign" (func (param "name" string) (param "algorithm" $alg) (param "digest" (list u8))
      (result (result (list u8) (error $key-error)))))))
  (core module $libc
    ;; 1700 pages = 106 MiB, enough to hold the digest.
    (memory (export "memory") 1700)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $next))
      (global.set $next (i32.add (global.get $next) (local.get 3)))
      (local.get $p)))
  (core instance $libc (instantiate $libc))
  (core func $sign (canon lower (func $keys "sign")
    (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core module $main
    (import "host" "sign" (func $sign (param i32 i32 i32 i32 i32 i32)))
    (memory (import "libc" "memory") 1)
    (data (i32.const 512) "k")
    (func (export "run") (result i32)
      ;; name "k" at 512; algorithm es256 (6); digest: 100 MiB at 4096; result area at 16
      (call $sign (i32.const 512) (i32.const 1) (i32.const 6)
        (i32.const 4096) (i32.const 104857600) (i32.const 16))
      (i32.const 0)))
  (core instance $main (instantiate $main
    (with "host" (instance (export "sign" (func $sign))))
    (with "libc" (instance (export "memory" (memory $libc "memory"))))))
  (func $run (result (result)) (canon lift (core func $main "run")))
  (instance $cli-run (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli-run)))

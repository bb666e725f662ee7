package mcruntime.test

import java.io.File
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit

/**
 * The development IDP as an app developer runs it: the `mc-devidp` binary (path in the system
 * property `mc.devidp.bin`, set by run-tests.sh) on a free loopback port. Its URL is read from
 * the line it prints at start.
 */
class DevIdp private constructor(private val process: Process, val url: String) : AutoCloseable {
    companion object {
        const val TENANT = "demo"
        const val CLIENT = "AnonymousUserEnrollment"
        const val AUDIENCE = "demo-api"
        private val STARTED = Regex("""^mc-devidp .* at (http://127\.0\.0\.1:\d+)$""")

        fun start(): DevIdp {
            val binary = System.getProperty("mc.devidp.bin")
                ?: error("system property mc.devidp.bin is not set: run bindings/kotlin/run-tests.sh")
            check(File(binary).canExecute()) { "$binary is not an executable: build it with cargo build -p mc-devidp" }
            val process = ProcessBuilder(binary, "--addr", "127.0.0.1:0")
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start()
            val url = CompletableFuture<String>()
            // Reads the URL, then keeps draining stdout so the IDP never blocks on a full pipe.
            Thread({
                process.inputStream.bufferedReader().forEachLine { line ->
                    STARTED.find(line)?.let { url.complete(it.groupValues[1]) }
                }
                url.completeExceptionally(IllegalStateException("mc-devidp exited without printing its URL"))
            }, "mc-devidp-stdout").apply { isDaemon = true }.start()
            return try {
                DevIdp(process, url.get(20, TimeUnit.SECONDS))
            } catch (e: Exception) {
                process.destroyForcibly()
                throw IllegalStateException("mc-devidp did not start", e)
            }
        }
    }

    override fun close() {
        process.destroy()
        if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly()
    }
}

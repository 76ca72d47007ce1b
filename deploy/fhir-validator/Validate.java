// Validate FHIR R4 JSON files against the base R4 definitions with HAPI FHIR's instance validator,
// offline, and print one JSON document with the issues of every file.
//
// Usage: java -cp <classes>:<jars>/* Validate FILE...
// Output (stdout): {"hapi_fhir": "8.8.0", "fhir_version": "4.0.1", "startup_ms": N, "files": [{"file",
//   "valid", "ms", "issues": [{"severity", "location", "line", "column", "message", "message_id"}]}],
//   "network_attempts": [...]}
// Exit: 0 when no file has an error or fatal issue, 1 when one has, 2 on a usage or internal error.
//
// No terminology server and no resource fetcher are configured: everything comes from the jars
// (hapi-fhir-validation-resources-r4). A proxy selector refuses and records any network attempt,
// so a validator that tried to fetch something would show it instead of hanging or succeeding.

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.util.VersionUtil;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationResult;
import java.io.IOException;
import java.net.Proxy;
import java.net.ProxySelector;
import java.net.SocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;

public final class Validate {
  private static final List<String> NETWORK_ATTEMPTS =
      Collections.synchronizedList(new ArrayList<>());

  /** Refuses every connection that asks for a proxy (HttpURLConnection, OkHttp, HttpClient). */
  private static final class OfflineProxySelector extends ProxySelector {
    @Override
    public List<Proxy> select(URI uri) {
      NETWORK_ATTEMPTS.add(String.valueOf(uri));
      throw new IllegalStateException("offline validator: network access refused: " + uri);
    }

    @Override
    public void connectFailed(URI uri, SocketAddress address, IOException exc) {}
  }

  public static void main(String[] args) throws Exception {
    if (args.length == 0) {
      System.err.println("usage: java -cp <classes>:<jars>/* Validate FILE...");
      System.exit(2);
    }
    ProxySelector.setDefault(new OfflineProxySelector());
    // Only real problems on stderr (slf4j-simple reads this when the first logger is made).
    if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
      System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "error");
    }
    long started = System.nanoTime();
    FhirContext ctx = FhirContext.forR4();
    ValidationSupportChain chain =
        new ValidationSupportChain(
            new DefaultProfileValidationSupport(ctx),
            new InMemoryTerminologyServerValidationSupport(ctx),
            new CommonCodeSystemsTerminologyService(ctx),
            new SnapshotGeneratingValidationSupport(ctx));
    FhirInstanceValidator module = new FhirInstanceValidator(chain);
    FhirValidator validator = ctx.newValidator();
    validator.registerValidatorModule(module);
    // Load the R4 definitions now, so startup_ms holds the one-off cost and ms the per-file one.
    validator.validateWithResult("{\"resourceType\":\"Basic\",\"code\":{\"text\":\"warm-up\"}}");
    long startupMs = (System.nanoTime() - started) / 1_000_000;

    boolean anyError = false;
    StringBuilder out = new StringBuilder();
    out.append("{\"hapi_fhir\":")
        .append(quote(VersionUtil.getVersion()))
        .append(",\"fhir_version\":")
        .append(quote(ctx.getVersion().getVersion().getFhirVersionString()))
        .append(",\"startup_ms\":")
        .append(startupMs)
        .append(",\"files\":[");
    for (int i = 0; i < args.length; i++) {
      if (i > 0) {
        out.append(',');
      }
      long t0 = System.nanoTime();
      List<SingleValidationMessage> messages = new ArrayList<>();
      try {
        String text = Files.readString(Path.of(args[i]), StandardCharsets.UTF_8);
        ValidationResult result = validator.validateWithResult(text);
        messages.addAll(result.getMessages());
      } catch (IOException | RuntimeException exc) {
        SingleValidationMessage failure = new SingleValidationMessage();
        failure.setSeverity(ResultSeverityEnum.FATAL);
        failure.setLocationString("(file)");
        failure.setMessage(exc.getClass().getSimpleName() + ": " + exc.getMessage());
        failure.setMessageId("regbridge-validator-exception");
        messages.add(failure);
      }
      long ms = (System.nanoTime() - t0) / 1_000_000;
      boolean valid = true;
      StringBuilder issues = new StringBuilder();
      for (SingleValidationMessage message : messages) {
        ResultSeverityEnum severity = message.getSeverity();
        if (severity == ResultSeverityEnum.ERROR || severity == ResultSeverityEnum.FATAL) {
          valid = false;
        }
        if (issues.length() > 0) {
          issues.append(',');
        }
        issues
            .append("{\"severity\":")
            .append(quote(severity == null ? "error" : severity.getCode()))
            .append(",\"location\":")
            .append(quote(message.getLocationString()))
            .append(",\"line\":")
            .append(message.getLocationLine())
            .append(",\"column\":")
            .append(message.getLocationCol())
            .append(",\"message\":")
            .append(quote(message.getMessage()))
            .append(",\"message_id\":")
            .append(quote(message.getMessageId()))
            .append('}');
      }
      anyError |= !valid;
      out.append("{\"file\":")
          .append(quote(args[i]))
          .append(",\"valid\":")
          .append(valid)
          .append(",\"ms\":")
          .append(ms)
          .append(",\"issues\":[")
          .append(issues)
          .append("]}");
    }
    out.append("],\"network_attempts\":[");
    synchronized (NETWORK_ATTEMPTS) {
      for (int i = 0; i < NETWORK_ATTEMPTS.size(); i++) {
        out.append(i > 0 ? "," : "").append(quote(NETWORK_ATTEMPTS.get(i)));
      }
    }
    out.append("]}");
    System.out.println(out);
    System.out.flush();
    System.exit(anyError ? 1 : 0);
  }

  /** A JSON string literal (or null). */
  private static String quote(String value) {
    if (value == null) {
      return "null";
    }
    StringBuilder sb = new StringBuilder(value.length() + 2).append('"');
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        default -> {
          if (c < 0x20) {
            sb.append(String.format("\\u%04x", (int) c));
          } else {
            sb.append(c);
          }
        }
      }
    }
    return sb.append('"').toString();
  }
}

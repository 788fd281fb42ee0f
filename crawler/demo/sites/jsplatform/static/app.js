/* 云端普惠 front-end: renders every page from data after DOMContentLoaded. */
(function () {
  "use strict";
  var SITE = {
    brand: "云端普惠",
    company: "重庆云端普惠金融信息服务有限公司",
    nav: [["/", "首页"], ["/products.html", "产品"], ["/notice.html", "公告"], ["/about.html", "关于我们"], ["/contact.html", "联系我们"]],
    footer: ["重庆云端普惠金融信息服务有限公司 | 客服电话：400-023-9955", "渝ICP备16050123号-1"]
  };
  var HOME = {
    headline: "云端普惠 · 保本保息 年化15% 稳赚不赔",
    sub: "100元起投，当日计息，风险准备金先行赔付，本息全额保障。",
    highlights: [
      {title: "云端月盈", yield: "年化15%", term: "1个月", note: "保本保息，到期自动回款"},
      {title: "云端季享", yield: "年化13%", term: "3个月", note: "按月付息，稳赚不赔"},
      {title: "云端活期", yield: "年化7.2%", term: "随存随取", note: "资金池统一调配，随时转出"}
    ],
    points: ["国资背景，实力雄厚", "银行存管，资金安全", "风险准备金先行赔付", "邀请好友投资奖励1%现金"]
  };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function chrome(main) {
    var nav = el("ul", {"class": "nav"}, SITE.nav.map(function (n) {
      return el("li", {}, [el("a", {href: n[0]}, [n[1]])]);
    }));
    var footer = el("div", {"class": "footer"}, SITE.footer.map(function (line) { return el("p", {}, [line]); }));
    return [el("div", {"class": "header"}, [el("a", {"class": "logo", href: "/"}, [SITE.brand]), nav]), main, footer];
  }

  function renderHome() {
    var cards = HOME.highlights.map(function (p) {
      return el("div", {"class": "card"}, [el("h3", {}, [p.title]), el("p", {"class": "yield"}, [p.yield]),
        el("p", {}, ["期限：" + p.term]), el("p", {}, [p.note])]);
    });
    var points = el("ul", {"class": "points"}, HOME.points.map(function (t) { return el("li", {}, [t]); }));
    return el("div", {"class": "main"}, [
      el("div", {"class": "banner"}, [el("h1", {id: "headline"}, [HOME.headline]), el("p", {}, [HOME.sub])]),
      el("div", {"class": "cards"}, cards), el("h2", {}, ["平台优势"]), points]);
  }

  function renderProducts(main) {
    fetch("/api/products.json").then(function (r) { return r.json(); }).then(function (data) {
      var rows = data.products.map(function (p) {
        return el("tr", {}, [el("td", {}, [p.name]), el("td", {}, [p.rate]), el("td", {}, [p.term]), el("td", {}, [p.guarantee])]);
      });
      main.appendChild(el("table", {"class": "products"}, [el("tr", {}, [el("th", {}, ["产品"]), el("th", {}, ["收益"]),
        el("th", {}, ["期限"]), el("th", {}, ["保障"])])].concat(rows)));
      main.appendChild(el("p", {"class": "tip", id: "products-loaded"}, [data.tip]));
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var app = document.getElementById("app");
    var page = document.body.getAttribute("data-page");
    var main;
    if (page === "products") {
      main = el("div", {"class": "main"}, [el("h1", {}, ["产品列表"])]);
      renderProducts(main);
    } else {
      main = renderHome();
    }
    chrome(main).forEach(function (n) { app.appendChild(n); });
    document.title = SITE.brand + " - " + (page === "products" ? "产品列表" : "保本保息 年化15% 稳赚不赔");
  });
})();
